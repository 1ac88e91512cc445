#!/usr/bin/env bash
# OpenRLHF GRPO with the verification service as the remote reward.
#
# OpenRLHF's single-turn executor (openrlhf/utils/agent.py, SingleTurnAgentExecutor)
# POSTs {"query": [prompt+response], "prompts": [prompt], "labels": [label]} to the
# reward URL for every finished sample (180 s timeout, 5 tries) and reads back
# "rewards", "scores" (dynamic filtering) and "extra_logs" (logged per sample).
# /compat/openrlhf answers exactly that: the reward is 1.0 / 0.0 (the pass fraction
# for code), 0.0 when the verifier abstains, and extra_logs carries
# verifier_correct / verifier_abstained / verifier_cached / verifier_prompt_found.
#
# The label column (--data.label_key) may hold the plain answer ("12") or a JSON
# task spec, e.g. {"task": "code", "tests": {"kind": "stdin", "cases": [...]}}.
#
# Requires a running service (the compat routes use the same API keys as /v1:
# run the service without VERIFIER_API_KEYS on a private network for OpenRLHF,
# which sends no Authorization header).
set -euo pipefail

VERIFIER_URL="${VERIFIER_URL:-http://127.0.0.1:8000}"
# With VERIFIER_API_KEYS set on the service, pass a key in the URL (these
# trainers send no Authorization header); keys are redacted from its logs.
KEY_QUERY="${VERIFIER_API_KEY:+?api_key=${VERIFIER_API_KEY}}"
MODEL="${MODEL:-Qwen/Qwen2.5-1.5B-Instruct}"
DATASET="${DATASET:-OpenRLHF/dapo-math-17k}"   # columns: prompt, label

# The service must answer before the trainer starts.
curl -fsS "${VERIFIER_URL}/readyz" >/dev/null

# Flag names of current OpenRLHF (>= 0.10, dotted groups). Older releases spell the
# reward flag --remote_rm_url and the data flags --input_key / --label_key.
python3 -m openrlhf.cli.train_ppo_ray \
  --actor.model_name_or_path "${MODEL}" \
  --reward.remote_url "${VERIFIER_URL}/compat/openrlhf${KEY_QUERY}" \
  --data.prompt_dataset "${DATASET}" \
  --data.input_key prompt \
  --data.label_key label \
  --data.apply_chat_template \
  --algo.advantage.estimator group_norm \
  --rollout.n_samples_per_prompt 8 \
  --ckpt.output_dir ./ckpt/openrlhf-verifier \
  "$@"
