#!/usr/bin/env bash
# Stop this node's Ray processes (head or worker) and remove the app's .pth file start-worker.sh
# wrote. On the head, the workers then lose their head and exit. `ray stop` stops every Ray
# process of this user on the node, another run's simulation included.
set -euo pipefail
ray stop --force >/dev/null || true
site=$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
rm -f "$site/fedavg_app.pth"
