"""Performance: the PerformanceMonitor, process sampling, bottleneck and scaling analysis, A/B benchmarks."""

from pipeline_props.perf.analysis import Thresholds, find_bottlenecks, percentiles, scaling_analysis
from pipeline_props.perf.monitor import COMPONENTS, PerformanceMonitor
from pipeline_props.perf.sampler import ProcessSampler, ResourceStats

__all__ = ["COMPONENTS", "PerformanceMonitor", "ProcessSampler", "ResourceStats", "Thresholds",
           "find_bottlenecks", "percentiles", "scaling_analysis"]
