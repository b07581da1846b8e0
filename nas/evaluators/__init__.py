from nas.evaluators.base import Evaluation, Evaluator
from nas.evaluators.benchmark import BenchmarkData, BenchmarkError, BenchmarkEvaluator, read_benchmark_csv
from nas.evaluators.command import CommandEvaluator
from nas.evaluators.proxy import PROXIES, ProxyEvaluator
from nas.evaluators.train import DatasetError, TrainEvaluator, load_dataset

__all__ = ["BenchmarkData", "BenchmarkError", "BenchmarkEvaluator", "CommandEvaluator",
           "DatasetError", "Evaluation", "Evaluator", "PROXIES", "ProxyEvaluator", "TrainEvaluator", "load_dataset",
           "read_benchmark_csv"]
