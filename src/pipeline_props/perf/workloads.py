"""The built-in throughput workloads of PerformanceMonitor: reader, encode, oracle."""

from collections.abc import Callable



__all__ = ["builtin_workload"]



def builtin_workload(component: str) -> Callable[[int], Callable[[], int | None]]:
    """The prepare-then-run function of a built-in in-process component (reader, encode, oracle)."""

    def data(n: int) -> bytes:
        from pipeline_props.strategies import DataGenerationConfig, DataGenerator

        return DataGenerator(DataGenerationConfig(seed=7)).generate_test_scenario_data(
            "performance_benchmark", n).files[0][1]

    def reader(n: int) -> Callable[[], int]:
        from pipeline_props.pipeline.reader import iter_records

        blob = data(n)
        return lambda: sum(1 for _ in iter_records(blob, source_file="s.csv", file_index=0))

    def encoder(n: int) -> Callable[[], int]:
        from pipeline_props.pipeline.messages import encode
        from pipeline_props.pipeline.reader import iter_records

        blob = data(n)
        return lambda: sum(1 for r in iter_records(blob, source_file="s.csv", file_index=0) if encode(r, "bench"))

    def oracle(n: int) -> Callable[[], int]:
        from pipeline_props.oracles import run_oracle

        blob = data(n)
        return lambda: (run_oracle([("s.csv", blob)]), n)[1]

    table = {"reader": reader, "encode": encoder, "oracle": oracle}
    if component not in table:
        from pipeline_props.errors import UsageError

        raise UsageError(f"no built-in workload for {component!r}: use one of {sorted(table)} or "
                         "'pipeline', or pass workload=")
    return table[component]


