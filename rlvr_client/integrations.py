"""Trainer adapters: a TRL ``GRPOTrainer`` reward function and verl ``compute_score``.

Checked against the trainers' sources (read in their repositories):

* TRL - ``huggingface/trl`` ``trl/trainer/grpo_trainer.py`` (``GRPOTrainer._calculate_rewards``
  on main): a custom reward function is called with keywords
  ``reward_func(prompts=, completions=, completion_ids=, **reward_kwargs)`` where
  ``reward_kwargs`` holds every other dataset column as a list (one value per
  completion) plus ``trainer_state`` and, on recent versions, ``log_extra(column,
  values)`` / ``log_metric(name, value)``; it must return ``list[float | None]``
  (None = this function does not apply to that sample; it becomes NaN and is
  left out of the sum). ``inspect.iscoroutinefunction(reward_func)`` selects the
  async path (run with ``asyncio.gather`` on the trainer's loop). The name used
  in logs is ``reward_func.__name__``. Conversational completions are lists of
  ``{"role", "content"}`` messages.
* verl - ``verl-project/verl`` ``verl/utils/reward_score/__init__.py``
  (``default_compute_score(data_source, solution_str, ground_truth, extra_info=None,
  ...)`` returns a float or a dict with ``score``),
  ``verl/experimental/reward_loop/reward_manager/naive.py`` (calls
  ``compute_score(data_source=, solution_str=, ground_truth=, extra_info=, **extra)``,
  awaits it when it is a coroutine function, else runs it in a thread) and
  ``.../reward_manager/batch.py`` (``compute_score(data_sources=, solution_strs=,
  ground_truths=, extra_infos=, **extra)`` -> one float or dict per sample). A
  dict's keys become ``reward_extra_info`` columns that validation averages
  (string columns are skipped), so every key here is present on every sample
  and holds a number or a string, never None. ``custom_reward_function.reward_kwargs``
  are merged into the call's keywords, which is how ``url`` reaches us.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal

from rlvr_client.client import (
    AsyncVerifierClient,
    VerifierClient,
    VerifierError,
    VerifyResult,
)
from rlvr_client.labels import parse_label

log = logging.getLogger("rlvr_client")

#: Dataset columns tried, in order, for the reference when none is named.
REFERENCE_COLUMNS = ("reference", "answer", "ground_truth", "solution", "label", "expected_answer")
#: Item fields filled from same-named dataset columns when those exist.
DEFAULT_COLUMNS: Mapping[str, str] = {"tests": "tests", "language": "language"}

ErrorPolicy = Literal["raise", "none"]


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "".join(parts)
    return str(content)


def completion_text(completion: Any) -> str:
    """The text to verify from one TRL completion.

    Standard format: the string itself. Conversational format (a list of
    ``{"role", "content"}`` messages, content as text or as ``{"type": "text",
    "text"}`` parts): the content of the last assistant message (the last
    message when none is marked assistant).
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        return _content_text(completion.get("content"))
    if isinstance(completion, Sequence):
        messages = [m for m in completion if isinstance(m, Mapping)]
        if not messages:
            return ""
        assistant = [m for m in messages if m.get("role") == "assistant"]
        return _content_text((assistant or messages)[-1].get("content"))
    raise TypeError(f"a completion must be text or messages, not {type(completion).__name__}")


def _verdict_word(result: VerifyResult) -> str:
    if result.correct is None:
        return "abstain"
    return "correct" if result.correct else "incorrect"


class TRLRewardFunction:
    """A TRL ``GRPOTrainer`` reward function backed by the verification service.

    Pass the instance itself in ``reward_funcs`` (synchronous path), or
    `as_async` for TRL's asynchronous path. For each completion the item is:
    ``response`` = `completion_text`, then the label in the reference column
    (``reference_column``, else the first of `REFERENCE_COLUMNS` present) parsed
    with `rlvr_client.labels.parse_label` (a plain answer or a JSON task spec),
    then ``columns`` (item field -> dataset column; default `DEFAULT_COLUMNS`,
    used only when the column exists and the value is not None).

    Returns one reward per completion: the service's reward, or ``abstain_reward``
    when the service abstained (default None: TRL leaves the sample out of this
    function's sum rather than calling it wrong). When TRL passes ``log_extra``
    / ``log_metric``, the verdict and reason of every completion go into the
    completions table and the abstain and cache-hit rates into the metrics.

    ``on_error="raise"`` (default) lets a `VerifierError` (the service stayed
    unreachable through every retry, or rejected the request) stop training;
    ``"none"`` logs it and returns None for the whole batch instead.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        name: str = "verifier",
        reference_column: str | None = None,
        columns: Mapping[str, str] | None = None,
        abstain_reward: float | None = None,
        on_error: ErrorPolicy = "raise",
        timeout: float = 120.0,
        retries: int = 4,
        batch_size: int = 512,
        max_concurrency: int = 64,
        client: VerifierClient | None = None,
    ) -> None:
        self.__name__ = name
        self.url = url
        self.api_key = api_key
        self.reference_column = reference_column
        self.columns = dict(DEFAULT_COLUMNS if columns is None else columns)
        self.abstain_reward = abstain_reward
        self.on_error = on_error
        self.options: dict[str, Any] = {
            "timeout": timeout,
            "retries": retries,
            "batch_size": batch_size,
        }
        self.max_concurrency = max_concurrency
        self._client = client
        self._owns_client = client is None
        self._async: tuple[asyncio.AbstractEventLoop, AsyncVerifierClient] | None = None

    # ------------------------------------------------------------------ items
    def _reference_column(self, columns: Mapping[str, Any]) -> str:
        if self.reference_column is not None:
            if self.reference_column not in columns:
                raise KeyError(
                    f"reference column {self.reference_column!r} is not among the dataset "
                    f"columns {sorted(columns)}"
                )
            return self.reference_column
        for name in REFERENCE_COLUMNS:
            if name in columns:
                return name
        raise KeyError(
            f"no reference column: none of {', '.join(REFERENCE_COLUMNS)} is among the dataset "
            f"columns {sorted(columns)}; pass reference_column="
        )

    def build_items(self, completions: Sequence[Any], **columns: Any) -> list[dict[str, Any]]:
        """One service item per completion, from the completion and the dataset columns."""
        reference_column = self._reference_column(columns)
        items = []
        for index, completion in enumerate(completions):
            item: dict[str, Any] = {"response": completion_text(completion)}
            item.update(parse_label(columns[reference_column][index]))
            for field, column in self.columns.items():
                values = columns.get(column)
                if values is not None and values[index] is not None and field not in item:
                    item[field] = values[index]
            items.append(item)
        return items

    def rewards(self, results: Sequence[VerifyResult]) -> list[float | None]:
        """The service's rewards, with ``abstain_reward`` where it abstained."""
        return [self.abstain_reward if r.abstained else r.reward for r in results]

    def _log(self, results: Sequence[VerifyResult], kwargs: Mapping[str, Any]) -> None:
        log_extra, log_metric = kwargs.get("log_extra"), kwargs.get("log_metric")
        if callable(log_extra):
            log_extra(f"{self.__name__}_verdict", [_verdict_word(r) for r in results])
            log_extra(f"{self.__name__}_reason", [r.reason for r in results])
        if callable(log_metric) and results:
            log_metric(
                f"{self.__name__}/abstain_rate",
                sum(r.abstained for r in results) / len(results),
            )
            log_metric(
                f"{self.__name__}/cached_rate", sum(r.cached for r in results) / len(results)
            )

    def _failed(self, exc: VerifierError, count: int) -> list[float | None]:
        if self.on_error == "raise":
            raise exc
        log.warning("verifier failed for %d completions, returning None: %s", count, exc)
        return [None] * count

    # ------------------------------------------------------------------ calls
    def _sync_client(self) -> VerifierClient:
        if self._client is None:
            self._client = VerifierClient(self.url, api_key=self.api_key, **self.options)
        return self._client

    def __call__(
        self,
        prompts: Sequence[Any] | None = None,
        completions: Sequence[Any] | None = None,
        completion_ids: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        """TRL's synchronous reward-function call; one reward (or None) per completion."""
        completions = list(completions or [])
        items = self.build_items(completions, **kwargs)
        try:
            results = self._sync_client().verify_batch(items)
        except VerifierError as exc:
            return self._failed(exc, len(items))
        self._log(results, kwargs)
        return self.rewards(results)

    def _async_client(self) -> AsyncVerifierClient:
        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop:
            options = {**self.options, "max_concurrency": self.max_concurrency}
            self._async = (loop, AsyncVerifierClient(self.url, api_key=self.api_key, **options))
        return self._async[1]

    async def acall(
        self,
        prompts: Sequence[Any] | None = None,
        completions: Sequence[Any] | None = None,
        completion_ids: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        """The asynchronous twin of `__call__` (same items, rewards and logging)."""
        completions = list(completions or [])
        items = self.build_items(completions, **kwargs)
        try:
            results = await self._async_client().verify_batch(items)
        except VerifierError as exc:
            return self._failed(exc, len(items))
        self._log(results, kwargs)
        return self.rewards(results)

    def as_async(self) -> Callable[..., Awaitable[list[float | None]]]:
        """An ``async def`` reward function with this name, for TRL's asynchronous path.

        A coroutine *function* is what ``inspect.iscoroutinefunction`` recognises;
        an object with an async ``__call__`` would be called synchronously.
        """

        async def reward(
            prompts: Sequence[Any] | None = None,
            completions: Sequence[Any] | None = None,
            completion_ids: Sequence[Any] | None = None,
            **kwargs: Any,
        ) -> list[float | None]:
            return await self.acall(prompts, completions, completion_ids, **kwargs)

        reward.__name__ = reward.__qualname__ = self.__name__
        reward.__doc__ = self.__doc__
        return reward

    def close(self) -> None:
        """Close the blocking client when this object created it."""
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None


def trl_reward_func(
    url: str | None = None, *, asynchronous: bool = False, **options: Any
) -> Callable[..., Any]:
    """A TRL reward function: the `TRLRewardFunction` itself, or its `as_async` form.

    ``options`` are `TRLRewardFunction`'s keyword arguments.
    """
    reward = TRLRewardFunction(url, **options)
    return reward.as_async() if asynchronous else reward


# ---------------------------------------------------------------------- verl
_ClientKey = tuple[str | None, str | None, float, int]
_sync_clients: dict[_ClientKey, VerifierClient] = {}
_async_clients: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[_ClientKey, AsyncVerifierClient]
] = weakref.WeakKeyDictionary()
_clients_lock = threading.Lock()


def _key(url: str | None, api_key: str | None, timeout: float, retries: int) -> _ClientKey:
    return (url, api_key, float(timeout), int(retries))


def _shared_client(key: _ClientKey) -> VerifierClient:
    with _clients_lock:
        client = _sync_clients.get(key)
        if client is None:
            url, api_key, timeout, retries = key
            client = VerifierClient(url, api_key=api_key, timeout=timeout, retries=retries)
            _sync_clients[key] = client
        return client


def _shared_async_client(key: _ClientKey) -> AsyncVerifierClient:
    """One client per (event loop, settings): an httpx.AsyncClient is bound to its loop."""
    loop = asyncio.get_running_loop()
    with _clients_lock:
        per_loop = _async_clients.setdefault(loop, {})
        client = per_loop.get(key)
        if client is None:
            url, api_key, timeout, retries = key
            client = AsyncVerifierClient(url, api_key=api_key, timeout=timeout, retries=retries)
            per_loop[key] = client
        return client


def verl_item(solution_str: str, ground_truth: Any, extra_info: Any = None) -> dict[str, Any]:
    """The service item for one verl sample.

    ``ground_truth`` is the label (plain answer or JSON task spec); a mapping
    under ``extra_info["verifier"]`` adds item fields the label does not set.
    """
    item: dict[str, Any] = {"response": solution_str}
    item.update(parse_label(ground_truth))
    overrides = extra_info.get("verifier") if isinstance(extra_info, Mapping) else None
    if isinstance(overrides, Mapping):
        for name, value in overrides.items():
            item.setdefault(str(name), value)
    return item


def verl_score(result: VerifyResult) -> dict[str, Any]:
    """verl's per-sample dict: ``score`` (0.0 on abstain), ``acc``, ``abstained``, ``cached``
    (numbers), ``reason`` and ``stage`` (strings)."""
    return {
        "score": 0.0 if result.abstained else float(result.reward),
        "acc": 1.0 if result.correct is True else 0.0,
        "abstained": 1.0 if result.abstained else 0.0,
        "cached": 1.0 if result.cached else 0.0,
        "reason": result.reason,
        "stage": result.stage,
    }


def _error_score(exc: Exception) -> dict[str, Any]:
    return {
        "score": 0.0,
        "acc": 0.0,
        "abstained": 1.0,
        "cached": 0.0,
        "reason": f"client_error:{type(exc).__name__}",
        "stage": "client",
    }


def compute_score(
    data_source: Any = None,
    solution_str: str = "",
    ground_truth: Any = None,
    extra_info: Any = None,
    *,
    url: str | None = None,
    api_key: str | None = None,
    timeout: float = 120.0,
    retries: int = 4,
    on_error: Literal["raise", "zero"] = "raise",
    **_: Any,
) -> dict[str, Any]:
    """verl ``compute_score`` for one sample (``reward_manager`` naive / the reward loop).

    ``data_source`` is accepted and ignored: the label decides the task. Extra
    keywords verl passes (``reward_router_address``, ...) are ignored; ``url``,
    ``api_key``, ``timeout``, ``retries`` and ``on_error`` come from
    ``custom_reward_function.reward_kwargs`` (``url`` else ``RLVR_VERIFIER_URL``).
    Returns `verl_score`; with ``on_error="zero"`` a `VerifierError` gives score
    0.0 with ``reason`` ``client_error:<type>`` instead of raising.
    """
    client = _shared_client(_key(url, api_key, timeout, retries))
    try:
        return verl_score(client.verify_item(verl_item(solution_str, ground_truth, extra_info)))
    except VerifierError as exc:
        if on_error == "raise":
            raise
        return _error_score(exc)


async def compute_score_async(
    data_source: Any = None,
    solution_str: str = "",
    ground_truth: Any = None,
    extra_info: Any = None,
    *,
    url: str | None = None,
    api_key: str | None = None,
    timeout: float = 120.0,
    retries: int = 4,
    on_error: Literal["raise", "zero"] = "raise",
    **_: Any,
) -> dict[str, Any]:
    """As `compute_score`, as a coroutine function (verl awaits it on its reward loop)."""
    client = _shared_async_client(_key(url, api_key, timeout, retries))
    try:
        result = await client.verify_item(verl_item(solution_str, ground_truth, extra_info))
    except VerifierError as exc:
        if on_error == "raise":
            raise
        return _error_score(exc)
    return verl_score(result)


def _batch_items(
    solution_strs: Sequence[str], ground_truths: Sequence[Any], extra_infos: Sequence[Any] | None
) -> list[dict[str, Any]]:
    if len(solution_strs) != len(ground_truths):
        raise ValueError(
            f"{len(solution_strs)} solution_strs but {len(ground_truths)} ground_truths"
        )
    infos = list(extra_infos) if extra_infos is not None else [None] * len(solution_strs)
    return [
        verl_item(solution, truth, info)
        for solution, truth, info in zip(solution_strs, ground_truths, infos, strict=True)
    ]


def compute_score_batch(
    data_sources: Sequence[Any] | None = None,
    solution_strs: Sequence[str] = (),
    ground_truths: Sequence[Any] = (),
    extra_infos: Sequence[Any] | None = None,
    *,
    url: str | None = None,
    api_key: str | None = None,
    timeout: float = 120.0,
    retries: int = 4,
    on_error: Literal["raise", "zero"] = "raise",
    **_: Any,
) -> list[dict[str, Any]]:
    """verl ``compute_score`` for ``reward_manager=batch``: one `verl_score` dict per sample,
    in input order, sent to the service as batches."""
    items = _batch_items(solution_strs, ground_truths, extra_infos)
    client = _shared_client(_key(url, api_key, timeout, retries))
    try:
        return [verl_score(r) for r in client.verify_batch(items)]
    except VerifierError as exc:
        if on_error == "raise":
            raise
        return [_error_score(exc) for _ in items]


async def compute_score_batch_async(
    data_sources: Sequence[Any] | None = None,
    solution_strs: Sequence[str] = (),
    ground_truths: Sequence[Any] = (),
    extra_infos: Sequence[Any] | None = None,
    *,
    url: str | None = None,
    api_key: str | None = None,
    timeout: float = 120.0,
    retries: int = 4,
    on_error: Literal["raise", "zero"] = "raise",
    **_: Any,
) -> list[dict[str, Any]]:
    """As `compute_score_batch`, as a coroutine function."""
    items = _batch_items(solution_strs, ground_truths, extra_infos)
    client = _shared_async_client(_key(url, api_key, timeout, retries))
    try:
        return [verl_score(r) for r in await client.verify_batch(items)]
    except VerifierError as exc:
        if on_error == "raise":
            raise
        return [_error_score(exc) for _ in items]
