"""Stage 7: the science products built on the cluster table: gradients, literature comparison, binary clusters."""
