"""The ServerApp: parse the config, build the model and the strategy, record the run.

Everything here is wiring: the algorithm is ``strategies.FederatedAveraging``,
the results files are ``server.results``; trackers subscribe to the
per-round hook.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from logging import INFO

import flwr
import torch
from flwr.app import ArrayRecord, Context, MetricRecord
from flwr.common.logger import log
from flwr.serverapp import Grid, ServerApp

from server.config import ExperimentConfig, parse_config
from server.polling import poll_faster
from server.results import ResultsWriter
from strategies.fedavg import FederatedAveraging, RoundRecord
from strategies.node_order import query_partition_ids
from tasks.examples import ExampleSet
from tasks.registry import get_task
from tasks.training import evaluate

app = ServerApp()


def initial_model(config: ExperimentConfig) -> torch.nn.Module:
    """w_0: the task's model initialised from the model seed."""
    torch.manual_seed(config.seeds["model"])
    return get_task(config.task).build_model()


def central_evaluator(
    config: ExperimentConfig, test: ExampleSet
) -> Callable[[int, ArrayRecord], MetricRecord | None]:
    """Evaluate the global model on the whole test set every ``eval-every`` rounds and the last."""
    model = get_task(config.task).build_model()

    def evaluate_fn(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        last = server_round == config.num_server_rounds
        if server_round % config.eval_every and not last:
            return None
        model.load_state_dict(arrays.to_torch_state_dict())
        loss, accuracy = evaluate(model, test, batch_size=config.eval_batch_size)
        return MetricRecord({"accuracy": accuracy, "loss": loss})

    return evaluate_fn


def build_strategy(config: ExperimentConfig) -> FederatedAveraging:
    """The paper's FederatedAveraging with the config's C, E, B and eta."""
    return FederatedAveraging(
        fraction_train=config.fraction_train,
        local_epochs=config.local_epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        lr_decay=config.lr_decay,
        sampling_seed=config.seeds["sampling"],
        min_nodes=config.min_nodes,
        node_wait_seconds=config.node_wait_seconds,
        fraction_evaluate=config.fraction_evaluate,
        max_update_norm=config.max_update_norm or None,
        target_accuracy=config.target,
        stop_at_target=config.stop_at_target,
        # Sample in partition order: the same clients on every engine.
        node_ranker=lambda grid, nodes: query_partition_ids(grid, nodes, config.round_timeout),
    )


def progress_line(record: RoundRecord, num_rounds: int) -> str:
    """One compact line per round for ``flwr run --stream``."""
    accuracy = "  -   " if record.test_accuracy is None else f"{record.test_accuracy:.4f}"
    loss = "  -   " if record.test_loss is None else f"{record.test_loss:.4f}"
    train = "  -   " if record.train_loss is None else f"{record.train_loss:.4f}"
    return (
        f"[round {record.round:>4}/{num_rounds}] acc {accuracy} loss {loss} train {train} "
        f"replied {record.clients_replied}/{record.clients_sampled} "
        f"rejected {record.clients_rejected} {record.seconds:.2f}s"
    )


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run one FedAvg experiment from the run config."""
    config = parse_config(context.run_config)
    grid = poll_faster(grid)  # deployment: replies every 0.2 s instead of every 3 s
    task = get_task(config.task)
    test = task.central_test(config)  # fails fast when the data is missing
    strategy = build_strategy(config)
    num_clients = len(strategy.wait_for_nodes(grid))
    writer = ResultsWriter.create(
        config,
        run_id=context.run_id,
        num_clients=num_clients,
        extra={
            "flwr_version": flwr.__version__,
            "torch_version": torch.__version__,
            "python_version": platform.python_version(),
        },
    )
    log(INFO, "results: %s (K=%d clients)", writer.directory, num_clients)

    def on_round_end(record: RoundRecord) -> None:
        writer.append_round(record)
        log(INFO, progress_line(record, config.num_server_rounds))

    strategy.on_round_end = on_round_end
    try:
        strategy.start(
            grid=grid,
            initial_arrays=ArrayRecord(initial_model(config).state_dict()),
            num_rounds=config.num_server_rounds,
            timeout=config.round_timeout,
            evaluate_fn=central_evaluator(config, test),
        )
    except BaseException as error:
        writer.finish(status="failed", error=f"{type(error).__name__}: {error}")
        raise
    summary = writer.finish(status="completed", stopped_early=strategy.stopped_early)
    log(
        INFO,
        "done: best accuracy %s, rounds to %.2f: %s, %d bytes, %.1f s",
        summary["best_accuracy"],
        summary["target_accuracy"],
        summary["rounds_to_target"],
        summary["total_bytes"],
        summary["wall_seconds"],
    )
