from tests.judge_double.fixtures import (  # noqa: F401
    dead_judge_url,
    fake_judge,
    fake_judge_pair,
    fake_judge_servers,
)
