"""The user's ServerApp: our FederatedAveraging in place of Flower's FedAvg, under DP clipping."""

from __future__ import annotations

import json
from pathlib import Path

from flwr.app import ArrayRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping

from quickstart_dp.task import Net, load_data, loss_of
from strategies import FederatedAveraging

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    cfg = context.run_config
    num_nodes = len(list(grid.get_node_ids()))
    fedavg = FederatedAveraging(fraction_train=1.0, lr=float(cfg["lr"]), batch_size=0)
    dp = DifferentialPrivacyServerSideFixedClipping(
        fedavg,
        noise_multiplier=float(cfg["noise-multiplier"]),
        clipping_norm=float(cfg["clipping-norm"]),
        num_sampled_clients=num_nodes,
    )
    x, y = load_data(999)

    def central_loss(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        net = Net()
        net.load_state_dict(arrays.to_torch_state_dict())
        return MetricRecord({"loss": float(loss_of(net, x, y))})

    result = dp.start(
        grid=grid,
        initial_arrays=ArrayRecord(Net().state_dict()),
        num_rounds=int(cfg["num-server-rounds"]),
        evaluate_fn=central_loss,
    )
    losses = {r: float(m["loss"]) for r, m in result.evaluate_metrics_serverapp.items()}
    print(f"central loss by round: {losses}")
    if cfg["results-file"]:
        Path(str(cfg["results-file"])).write_text(
            json.dumps({"central_loss": losses, "nodes": num_nodes})
        )
