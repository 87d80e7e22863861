"""nginx (Debian's) in front of several DaCHS processes: throughput that grows with cores.

One DaCHS process does its Python work (ADQL parsing, VOTable writing) on one
core; with N processes behind nginx the same load spreads over N cores.
nginx hands each request to the process with fewest requests in flight
(``least_conn``), keeps connections to them open, and leaves every URL
DaCHS writes pointing at nginx (DaCHS's ``serverURL``).  All processes share
one database and DaCHS root, so an async job (its UWS record lives in the
database, its files in the shared state directory) may be created by one
process, run by another and deleted by a third.  docs/service.md says how
the same arrangement spreads over machines.
"""
from __future__ import annotations

from pathlib import Path

# Async uploads may be 20 MB (DaCHS's limit); the proxy must not refuse them first.
MAX_BODY = "25m"
# Longer than DaCHS's longest sync wait, so DaCHS, not nginx, ends a slow request.
READ_TIMEOUT_S = 3700


def nginx_config(web_dir: Path, listen_port: int, backend_ports: list[int]) -> str:
    """nginx.conf: 127.0.0.1:listen_port -> the DaCHS processes on backend_ports."""
    temp = web_dir / "tmp"
    servers = "\n".join(f"    server 127.0.0.1:{port} max_fails=1 fail_timeout=2s;"
                        for port in backend_ports)
    return f"""# Written by ocvo serve; rewritten at each start.
daemon on;
worker_processes 1;
pid {web_dir / 'nginx.pid'};
error_log {web_dir / 'nginx-error.log'} warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {temp / 'body'};
  proxy_temp_path {temp / 'proxy'};
  fastcgi_temp_path {temp / 'fastcgi'};
  uwsgi_temp_path {temp / 'uwsgi'};
  scgi_temp_path {temp / 'scgi'};
  client_max_body_size {MAX_BODY};
  tcp_nodelay on;
  upstream dachs {{
    least_conn;
{servers}
    keepalive 64;
  }}
  server {{
    listen 127.0.0.1:{listen_port};
    location / {{
      proxy_pass http://dachs;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_read_timeout {READ_TIMEOUT_S}s;
      proxy_send_timeout {READ_TIMEOUT_S}s;
      # A client that hangs up ends its request at DaCHS too (and so its query).
      proxy_ignore_client_abort off;
      # Only failed connections are retried elsewhere, never a request DaCHS got.
      proxy_next_upstream error;
    }}
  }}
}}
"""
