# Shared by the ray-cluster scripts (sourced).

# This node's first address (`hostname -I`): the default HEAD_IP / NODE_IP.
first_ip() {
    hostname -I | awk '{print $1}'
}

# Ray refuses nodes of another Ray or Python version; a ClientApp actor needs the same flwr and
# torch as the head's ServerApp. Print them, so that a mismatch shows where it starts.
check_versions() {
    python - <<'PY'
import platform
from importlib.metadata import version

print("python", platform.python_version(), "ray", version("ray"), "flwr", version("flwr"),
      "torch", version("torch"))
PY
}
