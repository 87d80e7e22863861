"""The publication side: a private PostgreSQL + DaCHS instance and the publish step.

DaCHS runs on Debian's /usr/bin/python3 and is only ever driven through its
``dachs`` command line from here (the server through ``dachs_serve.py``, the
same command with Nagle off), so the ingest venv is never imported by it.
"""
