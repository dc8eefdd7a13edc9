"""Seconds per round: a bare PyTorch loop, our strategy on Flower, Flower's built-in FedAvg.

    FEDAVG_DATA_DIR=/path/to/data python -m benchmarks.speed --task mnist-2nn --rounds 20

All three do the same math for R rounds of the paper's setting (K clients,
C=0.1, E=1, B=10, eta=0.1, central evaluation of the global model on the 10k
test images after every round):

- ``bare``: one process, no Flower: the same client sampling
  (``strategies.sampling``), the same ClientUpdate (``tasks.training``, the
  same per-client batch order), the same n_k-weighted average
  (``strategies.aggregation``), the same evaluation. The limit.
- ``ours``: ``FederatedAveraging`` with our ClientApp in Flower's Ray
  simulation engine, one CPU per ClientApp (two train in parallel here).
- ``builtin``: Flower's ``FedAvg`` with the same ClientApp and evaluation.

Both Flower variants run in-process through ``flwr.simulation.run_simulation``
so that they share one harness; each run's first round (Ray and actor
start-up) is reported apart as the fixed cost. Prints a table of seconds per
round (median over rounds 2..R) and the ratio to the bare loop.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from clients import app as client_module
from server import app as server_module
from strategies.aggregation import WeightedMean
from strategies.sampling import clients_per_round, sample_clients
from tasks.registry import get_task, parse_run_config
from tasks.training import train_local


def experiment(task: str, rounds: int, results_dir: str) -> dict[str, Any]:
    return {
        "task": task,
        "partition": "iid",
        "fraction-train": 0.1,
        "local-epochs": 1,
        "batch-size": 10,
        "lr": 0.1,
        "num-server-rounds": rounds,
        "results-dir": results_dir,
        "checkpoint-every": 0,
        "wandb.mode": "disabled",
    }


Parts = dict[str, list[float]]  # "clients", "aggregate", "evaluate": seconds per round


def bare_loop(run_config: dict[str, Any], num_clients: int) -> tuple[list[float], float, Parts]:
    """Seconds of each round of the same math without Flower, the final accuracy, the parts."""
    config = parse_run_config(run_config)
    task = get_task(config.task)
    evaluate_global = server_module.central_evaluator(config, task.central_test(config))
    torch.manual_seed(config.seeds["model"])
    global_model = task.build_model()
    client_model = task.build_model()
    data = [task.client_data(config, k, num_clients) for k in range(num_clients)]
    seconds: list[float] = []
    parts: Parts = {"clients": [], "aggregate": [], "evaluate": []}
    for server_round in range(1, config.num_server_rounds + 1):
        started = time.perf_counter()
        m = clients_per_round(config.fraction_train, num_clients)
        mean = WeightedMean()
        global_state = {k: v.clone() for k, v in global_model.state_dict().items()}
        for k in sample_clients(
            range(num_clients), m, seed=config.seeds["sampling"], server_round=server_round
        ):
            client_model.load_state_dict(global_state)
            rng = np.random.default_rng([config.seed, server_round, k])
            train_local(
                client_model,
                data[k].train,
                epochs=config.local_epochs,
                batch_size=config.batch_size,
                lr=config.lr,
                rng=rng,
            )
            state = {name: t.detach().numpy() for name, t in client_model.state_dict().items()}
            mean.add(state, len(data[k].train))
        trained = time.perf_counter()
        global_model.load_state_dict({k: torch.from_numpy(v) for k, v in mean.result().items()})
        aggregated = time.perf_counter()
        metrics = evaluate_global(server_round, ArrayRecord(global_model.state_dict()))
        accuracy = float(metrics["accuracy"]) if metrics else float("nan")  # type: ignore[arg-type]
        seconds.append(time.perf_counter() - started)
        parts["clients"].append(trained - started)
        parts["aggregate"].append(aggregated - trained)
        parts["evaluate"].append(time.perf_counter() - aggregated)
    return seconds, accuracy, parts


def _with_config(run_config: dict[str, Any]) -> Callable[[Context], Context]:
    """run_simulation passes no run config; Flower forbids changing it in place."""

    def apply(context: Context) -> Context:
        return Context(
            run_id=context.run_id,
            node_id=context.node_id,
            node_config=context.node_config,
            state=context.state,
            run_config=dict(run_config),
        )

    return apply


def client_app(run_config: dict[str, Any]) -> ClientApp:
    """Our ClientApp, with the run config that run_simulation cannot pass."""
    app = ClientApp()
    set_config = _with_config(run_config)

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        return client_module.train(msg, set_config(context))

    @app.query("identify")
    def identify(msg: Message, context: Context) -> Message:
        return client_module.identify(msg, set_config(context))

    return app


def ours_app(run_config: dict[str, Any]) -> ServerApp:
    app = ServerApp()
    set_config = _with_config(run_config)

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        server_module.main(grid, set_config(context))

    return app


def builtin_app(run_config: dict[str, Any], out: Path) -> ServerApp:
    """Flower's FedAvg with the same clients and evaluation; writes round times to ``out``."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        config = parse_run_config(run_config)
        task = get_task(config.task)
        evaluate_global = server_module.central_evaluator(config, task.central_test(config))
        marks: list[float] = []
        accuracy: list[float] = []
        evaluate_seconds: list[float] = []

        def timed_evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
            started = time.perf_counter()
            metrics = evaluate_global(server_round, arrays)
            marks.append(time.perf_counter())
            evaluate_seconds.append(marks[-1] - started)
            value = metrics["accuracy"] if metrics else float("nan")
            accuracy.append(float(value))  # type: ignore[arg-type]
            return metrics

        strategy = FedAvg(
            fraction_train=config.fraction_train,
            fraction_evaluate=0.0,
            min_train_nodes=1,
            min_available_nodes=1,
        )
        strategy.start(
            grid=grid,
            initial_arrays=ArrayRecord(server_module.initial_model(config).state_dict()),
            num_rounds=config.num_server_rounds,
            train_config=ConfigRecord(
                {
                    "local-epochs": config.local_epochs,
                    "batch-size": config.batch_size,
                    "lr": config.lr,
                }
            ),
            evaluate_fn=timed_evaluate,
        )
        seconds = [b - a for a, b in itertools.pairwise(marks)]
        out.write_text(
            json.dumps(
                {"seconds": seconds, "accuracy": accuracy[-1], "evaluate": evaluate_seconds[1:]}
            )
        )

    return app


def flower_run(server_app: ServerApp, run_config: dict[str, Any], num_clients: int) -> float:
    from flwr.simulation import run_simulation

    started = time.perf_counter()
    run_simulation(
        server_app=server_app,
        client_app=client_app(run_config),
        num_supernodes=num_clients,
        backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}},
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="mnist-2nn", choices=["mnist-2nn", "mnist-cnn"])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--num-clients", type=int, default=100)
    parser.add_argument("--variants", default="bare,ours,builtin")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="fedavg-speed-"))
    run_config = experiment(args.task, args.rounds, str(workdir))
    per_round: dict[str, list[float]] = {}
    parts: dict[str, Parts] = {}
    final_accuracy: dict[str, float] = {}
    wall: dict[str, float] = {}
    for variant in args.variants.split(","):
        started = time.perf_counter()
        if variant == "bare":
            per_round[variant], final_accuracy[variant], parts[variant] = bare_loop(
                run_config, args.num_clients
            )
        elif variant == "ours":
            config = {**run_config, "run-name": "ours"}
            flower_run(ours_app(config), config, args.num_clients)
            rows = [json.loads(x) for x in (workdir / "ours" / "metrics.jsonl").open()]
            rounds = [r for r in rows if r["round"] > 0]
            per_round[variant] = [r["seconds"] for r in rounds]
            final_accuracy[variant] = rows[-1]["test_accuracy"]
            parts[variant] = {
                part: [r[f"{part}_seconds"] for r in rounds]
                for part in ("clients", "aggregate", "evaluate")
            }
        elif variant == "builtin":
            out = workdir / "builtin.json"
            flower_run(builtin_app(run_config, out), run_config, args.num_clients)
            measured = json.loads(out.read_text())
            per_round[variant], final_accuracy[variant] = measured["seconds"], measured["accuracy"]
            parts[variant] = {"evaluate": measured["evaluate"]}
        else:
            raise SystemExit(f"unknown variant {variant}")
        wall[variant] = time.perf_counter() - started
    bare = statistics.median(per_round["bare"][1:]) if "bare" in per_round else None
    print(
        f"\n{args.task}, K={args.num_clients}, C=0.1, E=1, B=10, R={args.rounds}, "
        f"torch threads {torch.get_num_threads()}"
    )
    print(
        "| variant | s/round (median, rounds 2..R) | ratio to bare | first round s | wall s "
        "| final accuracy |"
    )
    print("|---|---|---|---|---|---|")
    for variant, seconds in per_round.items():
        median = statistics.median(seconds[1:])
        ratio = f"{median / bare:.2f}x" if bare else "-"
        fixed = wall[variant] - sum(seconds[1:])
        print(
            f"| {variant} | {median:.3f} | {ratio} | {seconds[0]:.2f} | {wall[variant]:.1f} "
            f"(fixed {fixed:.1f}) | {final_accuracy[variant]:.4f} |"
        )

    print(
        "\nWhere a round goes (medians over rounds 2..R, seconds; other = the rest of the round):"
    )
    print("| variant | clients: send w_t .. last reply | aggregate | central evaluation | other |")
    print("|---|---|---|---|---|")
    for variant, measured in parts.items():
        medians = {part: statistics.median(values[1:]) for part, values in measured.items()}
        total = statistics.median(per_round[variant][1:])
        # Flower's FedAvg does not say where its time goes outside our evaluation function.
        clients = f"{medians['clients']:.3f}" if "clients" in medians else "-"
        aggregate = f"{medians['aggregate']:.3f}" if "aggregate" in medians else "-"
        other = total - sum(medians.values())
        print(f"| {variant} | {clients} | {aggregate} | {medians['evaluate']:.3f} | {other:.3f} |")


if __name__ == "__main__":
    main()
