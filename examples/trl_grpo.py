"""GRPO with TRL, rewarded by the verification service.

    rlvr-verifier serve --port 8000 &            # or any running deployment
    pip install trl datasets                      # the trainer (not a dependency of this repo)
    RLVR_VERIFIER_URL=http://127.0.0.1:8000 python examples/trl_grpo.py

The reward function is `rlvr_client.integrations.TRLRewardFunction`: TRL calls it
with ``prompts=``, ``completions=`` (conversational here), ``completion_ids=`` and
every other dataset column as a keyword, so the ``answer`` column below reaches
the verifier as the reference. Abstentions come back as None (TRL leaves them
out of the reward sum); the verdict and reason of every completion land in
TRL's completions table (``log_completions=True``).

A column may also hold a JSON task spec instead of a plain answer, e.g.
``{"task": "code", "tests": {"kind": "stdin", "cases": [...]}}``.
"""

from __future__ import annotations

from datasets import load_dataset
from trl import GRPOConfig, GRPOTrainer

from rlvr_client.integrations import TRLRewardFunction


def to_example(row: dict) -> dict:
    """GSM8K row -> conversational prompt + the final answer after '####'."""
    return {
        "prompt": [
            {
                "role": "user",
                "content": row["question"] + "\nPut the final answer in \\boxed{}.",
            }
        ],
        "answer": row["answer"].split("####")[-1].strip(),
    }


def main() -> None:
    dataset = load_dataset("openai/gsm8k", "main", split="train")
    dataset = dataset.map(to_example, remove_columns=dataset.column_names)

    # Synchronous by default; pass `verifier.as_async()` instead to use TRL's async path.
    verifier = TRLRewardFunction(reference_column="answer", name="verifier")

    trainer = GRPOTrainer(
        model="Qwen/Qwen2.5-0.5B-Instruct",
        reward_funcs=[verifier],
        args=GRPOConfig(
            output_dir="qwen-0.5b-grpo-verifier",
            num_generations=8,
            max_completion_length=512,
            log_completions=True,
        ),
        train_dataset=dataset,
    )
    trainer.train()


if __name__ == "__main__":
    main()
