"""Times Microsoft's Agent Governance Toolkit policy evaluator (agent_os.policies.PolicyEvaluator,
PyPI agent-governance-toolkit-core) on the rule set and requests the Warden policy benchmark
writes to a JSON file, and prints one JSON object: median and p99 per rule-set size, in ms.

Usage: python agt_policy_bench.py <spec.json> <samples-per-size>
"""
import json
import statistics
import sys
import time

from agent_os.policies.evaluator import PolicyEvaluator
from agent_os.policies.schema import PolicyDocument


def percentile(values, p):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(-(-p * len(ordered) // 100)) - 1))
    return ordered[index]


def main():
    spec = json.load(open(sys.argv[1]))
    samples = int(sys.argv[2])
    out = {}
    for size, rule_set in spec["sets"].items():
        document = PolicyDocument.model_validate(
            {"version": "1.0", "name": f"bench-{size}", "rules": rule_set, "defaults": {"action": "allow"}}
        )
        evaluator = PolicyEvaluator(policies=[document])
        contexts = spec["contexts"]
        for i in range(200):
            evaluator.evaluate(contexts[i % len(contexts)])
        timings = []
        for i in range(samples):
            context = contexts[i % len(contexts)]
            started = time.perf_counter()
            evaluator.evaluate(context)
            timings.append((time.perf_counter() - started) * 1000)
        out[size] = {"median": statistics.median(timings), "p99": percentile(timings, 99), "n": samples}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
