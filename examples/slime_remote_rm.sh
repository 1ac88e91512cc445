#!/usr/bin/env bash
# slime with the verification service as the remote reward model.
#
# slime's remote_rm (slime/rollout/rm_hub/__init__.py) POSTs
# {"prompt": sample.prompt, "response": sample.response, "label": sample.label}
# to --rm-url for every sample (shared aiohttp session: 64 connections, 120 s,
# 10 retries with backoff) and stores the JSON reply as the sample's reward.
# /compat/slime replies with a dict: --reward-key reward picks the number
# (0.0 when the verifier abstained); "correct", "abstained", "reason", "stage"
# and the rest of the verdict stay in the sample for logs.
#
# The label (--label-key) may be the plain answer or a JSON task spec, e.g.
# {"task": "code", "tests": {"kind": "functional", "fn_name": "add", "cases": [...]}}.
set -euo pipefail

VERIFIER_URL="${VERIFIER_URL:-http://127.0.0.1:8000}"
# With VERIFIER_API_KEYS set on the service, pass a key in the URL (these
# trainers send no Authorization header); keys are redacted from its logs.
KEY_QUERY="${VERIFIER_API_KEY:+?api_key=${VERIFIER_API_KEY}}"
curl -fsS "${VERIFIER_URL}/readyz" >/dev/null

# Add these to your usual slime launch (model, parallelism and rollout flags omitted):
REWARD_ARGS=(
  --rm-type remote_rm
  --rm-url "${VERIFIER_URL}/compat/slime${KEY_QUERY}"   # slime posts to this exact URL
  --reward-key reward
  --input-key prompt
  --label-key label
  --apply-chat-template
)

python3 train.py "${REWARD_ARGS[@]}" "$@"
