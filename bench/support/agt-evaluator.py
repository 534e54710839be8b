"""Times Microsoft's Agent Governance Toolkit policy evaluator (PyPI agent-governance-toolkit-core,
agent_os.policies.PolicyEvaluator) on rule sets and requests handed over by bench/sections/policy.ts.

stdin: {"sets": [{"size": n, "rules": [{"name", "field", "operator", "value", "action", "priority"}]}],
        "contexts": [{...}], "samples": n, "warmup": n}
stdout: {"version": "...", "results": [{"size": n, "samples_ms": [...], "decisions": [...]}]}
"""
import importlib.metadata
import json
import sys
import time
import warnings

warnings.filterwarnings("ignore")
from agent_os.policies import PolicyDocument, PolicyEvaluator  # noqa: E402


def main() -> None:
    spec = json.load(sys.stdin)
    contexts = spec["contexts"]
    out = []
    for rule_set in spec["sets"]:
        document = PolicyDocument.model_validate(
            {
                "name": f"bench-{rule_set['size']}",
                "rules": [
                    {
                        "name": rule["name"],
                        "condition": {"field": rule["field"], "operator": rule["operator"], "value": rule["value"]},
                        "action": rule["action"],
                        "priority": rule["priority"],
                    }
                    for rule in rule_set["rules"]
                ],
                "defaults": {"action": "allow"},
            }
        )
        evaluator = PolicyEvaluator(policies=[document])
        decisions = [evaluator.evaluate(context).action for context in contexts]
        for i in range(spec["warmup"]):
            evaluator.evaluate(contexts[i % len(contexts)])
        samples = []
        for i in range(spec["samples"]):
            context = contexts[i % len(contexts)]
            started = time.perf_counter_ns()
            evaluator.evaluate(context)
            samples.append((time.perf_counter_ns() - started) / 1e6)
        out.append({"size": rule_set["size"], "samples_ms": samples, "decisions": decisions})
    json.dump({"version": importlib.metadata.version("agent-governance-toolkit-core"), "results": out}, sys.stdout)


main()
