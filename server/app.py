"""The ServerApp: parse the config, build the model and the strategy, record the run.

Everything here is wiring: the algorithm is ``strategies.FederatedAveraging``
(or the Flower strategy the config names, ``server.strategy_factory``), the
rounds are ``server.rounds``, the transport ``server.transport``, the results
files ``server.results``; trackers subscribe to the per-round hook.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from logging import ERROR, INFO, WARNING
from pathlib import Path
from typing import Any

import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, MetricRecord
from flwr.common.logger import log
from flwr.serverapp import Grid, ServerApp

from protocol.config import ExperimentConfig
from protocol.messages import BATCH_SIZE_KEY, LOCAL_EPOCHS_KEY, LR_KEY, SERVER_ROUND_KEY
from server.checkpoint import check_compatible, load_checkpoint, save_checkpoint
from server.plots import plot_run
from server.provenance import environment_info
from server.results import ResultsWriter, load_run, one_line_error, write_failed_start
from server.round_record import RoundRecord
from server.rounds import RoundRunner
from server.stopping import Stopping
from server.strategy_factory import build_strategy
from server.tracking import Tracker, fan_out, start_tracker
from server.transport import TransportGrid
from server.wandb_config import parse_wandb_config
from strategies.fedavg import decayed_learning_rate
from strategies.nodes import wait_for_nodes
from strategies.records import to_array_record, to_named_arrays
from tasks.examples import ExampleSet, sample_examples
from tasks.init import initialise
from tasks.registry import get_task, parse_run_config, target_accuracy
from tasks.training import evaluate, resolve_device

app = ServerApp()


def initial_model(config: ExperimentConfig) -> torch.nn.Module:
    """w_0: the task's model initialised from the model seed, by the config's ``init``."""
    torch.manual_seed(config.seeds["model"])
    return initialise(get_task(config.task).build_model(), config.init)


def central_evaluator(
    config: ExperimentConfig, test: ExampleSet
) -> Callable[[int, ArrayRecord], MetricRecord | None]:
    """Evaluate the global model on the whole test set every ``eval-every`` rounds and the last."""
    # channels_last lets oneDNN run the CNN's convolutions about twice as fast on a
    # CPU; it changes the memory layout only (4-D weights), not the function computed.
    model = get_task(config.task).build_model().to(resolve_device(config.device))
    model = model.to(memory_format=torch.channels_last)

    def evaluate_fn(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        last = server_round == config.num_server_rounds
        if server_round % config.eval_every and not last:
            return None
        model.load_state_dict(arrays.to_torch_state_dict())
        loss, accuracy = evaluate(model, test, batch_size=config.eval_batch_size)
        return MetricRecord({"accuracy": accuracy, "loss": loss})

    return evaluate_fn


def round_config(config: ExperimentConfig) -> Callable[[int], ConfigRecord]:
    """Round t's train config: E, B and eta_t, for any strategy's clients.

    Ours sets the same values itself; Flower's strategies send what they are given.
    """

    def train_config(server_round: int) -> ConfigRecord:
        return ConfigRecord(
            {
                SERVER_ROUND_KEY: server_round,
                LOCAL_EPOCHS_KEY: config.local_epochs,
                BATCH_SIZE_KEY: config.batch_size,
                LR_KEY: decayed_learning_rate(config.lr, config.lr_decay, server_round),
            }
        )

    return train_config


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


def close_run(
    directory: Path,
    summary: Mapping[str, Any],
    tracker: Tracker,
    *,
    final_arrays: ArrayRecord | None,
) -> None:
    """Plot the run and close its tracker; neither may fail a run whose results are written."""
    try:
        log(INFO, "plot: %s", plot_run(load_run(directory)))
    except Exception as error:
        log(WARNING, "could not plot %s: %s", directory, error)
    tracker.finish(summary, final_arrays=final_arrays)


def _rounded(value: float | None, digits: int, missing: str = "-") -> str:
    return missing if value is None else f"{value:.{digits}f}"


def fail_before_start(
    context: Context, error: BaseException, config: ExperimentConfig | None
) -> None:
    """Log a failure before round 1 as one line and write the run's results directory."""
    log(ERROR, "run failed before round 1: %s", one_line_error(error))
    try:
        directory = write_failed_start(
            context.run_config, run_id=context.run_id, error=error, config=config
        )
        log(ERROR, "results: %s (status failed)", directory)
    except OSError as write_error:
        log(WARNING, "could not write the failed run's results: %s", write_error)


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run one FedAvg experiment from the run config."""
    config: ExperimentConfig | None = None
    # Weights travel packed to the nodes that read it, replies stream in as they are
    # pulled; every strategy sees named arrays.
    grid = TransportGrid(grid)
    try:  # a run that fails before round 1 still says so, in one line and in summary.json
        config = parse_run_config(context.run_config)
        tracking = parse_wandb_config(context.run_config)
        task = get_task(config.task)
        test = task.central_test(config)  # fails fast when the data is missing
        if config.eval_max_examples:
            # A stated deviation for small machines: score a fixed seeded sample, not all of it.
            full_size = len(test)
            test = sample_examples(test, config.eval_max_examples, config.seeds["partition"])
            log(
                INFO,
                "central test set: %d of %d examples (eval-max-examples)",
                len(test),
                full_size,
            )
        checkpoint = load_checkpoint(config.resume_from) if config.resume_from else None
        if checkpoint is not None:
            check_compatible(checkpoint, config)
        first_round = checkpoint.round + 1 if checkpoint else 1
        num_clients = len(wait_for_nodes(grid, config.min_nodes, config.node_wait_seconds))
        strategy = build_strategy(config, num_clients=num_clients)
    except Exception as error:
        fail_before_start(context, error, config)
        raise
    info = environment_info()
    if checkpoint is not None:
        writer = ResultsWriter.resume(checkpoint.path.parent, config, after_round=checkpoint.round)
        initial_arrays = to_array_record(checkpoint.arrays)
        log(INFO, "resuming %s after round %d", writer.directory, checkpoint.round)
    else:
        writer = ResultsWriter.create(
            config, run_id=context.run_id, num_clients=num_clients, extra=info
        )
        initial_arrays = ArrayRecord(initial_model(config).state_dict())
    log(INFO, "results: %s (K=%d clients)", writer.directory, num_clients)
    tracker = start_tracker(
        tracking,
        config=config,
        directory=writer.directory,
        run_info={**info, "num_clients": num_clients, "flwr_run_id": str(context.run_id)},
    )

    def show_progress(record: RoundRecord) -> None:
        log(INFO, progress_line(record, config.num_server_rounds))

    def checkpoint_round(record: RoundRecord) -> None:
        every, last = config.checkpoint_every, record.round == config.num_server_rounds
        if every and record.round > 0 and (record.round % every == 0 or last):
            save_checkpoint(
                writer.directory,
                server_round=record.round,
                arrays=to_named_arrays(runner.arrays),
                config=config,
            )

    runner = RoundRunner(
        strategy,
        grid,
        timeout=config.round_timeout,
        train_config=round_config(config),
        evaluate_fn=central_evaluator(config, test),
        on_round_end=fan_out(
            writer.append_round, checkpoint_round, show_progress, tracker.log_round
        ),
        stopping=Stopping(
            target_accuracy=target_accuracy(config),
            stop_at_target=config.stop_at_target,
            max_rounds_without_update=config.max_rounds_without_update,
        ),
    )
    try:
        outcome = runner.run(
            initial_arrays,
            num_rounds=config.num_server_rounds - first_round + 1,
            first_round=first_round,
        )
    except BaseException as error:
        summary = writer.finish(status="failed", error=f"{type(error).__name__}: {error}")
        close_run(writer.directory, summary, tracker, final_arrays=None)
        raise
    summary = writer.finish(status="completed", stopped_early=outcome.stopped_early)
    close_run(writer.directory, summary, tracker, final_arrays=outcome.result.arrays)
    log(
        INFO,
        "done: best accuracy %s, rounds to %.2f: %s, %d bytes, %.1f s",
        _rounded(summary["best_accuracy"], 4),
        summary["target_accuracy"],
        _rounded(summary["rounds_to_target"], 1, missing="not reached"),
        summary["total_bytes"],
        summary["wall_seconds"],
    )
