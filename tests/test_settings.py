"""Settings come from the environment; checked in fresh interpreters so nothing leaks between runs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
PROBE = (
    "import django, json; from django.conf import settings; django.setup(); "
    "print(json.dumps({'engine': settings.DATABASES['default']['ENGINE'], "
    "'pool': settings.DATABASES['default'].get('OPTIONS', {}).get('pool'), "
    "'binding': settings.DATABASES['default'].get('OPTIONS', {}).get('server_side_binding'), "
    "'prepare': settings.DATABASES['default'].get('OPTIONS', {}).get('prepare_threshold', 'unset'), "
    "'conn_max_age': settings.DATABASES['default'].get('CONN_MAX_AGE'), "
    "'layer': settings.CHANNEL_LAYERS['default']['BACKEND'], 'debug': settings.DEBUG}))"
)


def run_settings(**env):
    clean = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "DATABASE_PREPARE_THRESHOLD", "REDIS_URL", "REDIS_CHANNEL_LAYER", "DEBUG", "SECRET_KEY"}}
    clean.update(env, DJANGO_SETTINGS_MODULE="creatorflow.settings")
    return subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60)


def test_no_environment_means_sqlite_and_the_in_memory_layer():
    result = run_settings()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "engine": "django.db.backends.sqlite3",
        "pool": None,
        "binding": None,
        "prepare": "unset",
        "conn_max_age": 0,
        "layer": "channels.layers.InMemoryChannelLayer",
        "debug": True,
    }


def test_database_and_redis_urls_switch_to_postgresql_with_a_pool_and_redis():
    result = run_settings(DATABASE_URL="postgres://u:p@db.internal:5432/cf", REDIS_URL="redis://cache.internal:6379/0")
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["engine"] == "django.db.backends.postgresql"
    assert values["pool"]["max_size"] == 20 and values["conn_max_age"] == 0
    assert values["layer"] == "channels_redis.pubsub.RedisPubSubChannelLayer"
    assert values["binding"] is True and values["prepare"] == 5


def test_database_prepare_threshold_turns_preparing_off_and_refuses_what_is_not_a_number():
    postgres = "postgres://u:p@db.internal:5432/cf"
    off = run_settings(DATABASE_URL=postgres, DATABASE_PREPARE_THRESHOLD="off")
    assert off.returncode == 0, off.stderr
    assert json.loads(off.stdout)["prepare"] is None
    assert json.loads(run_settings(DATABASE_URL=postgres, DATABASE_PREPARE_THRESHOLD="2").stdout)["prepare"] == 2
    wrong = run_settings(DATABASE_URL=postgres, DATABASE_PREPARE_THRESHOLD="often")
    assert wrong.returncode != 0
    assert "DATABASE_PREPARE_THRESHOLD must be a number of runs or off, not 'often'" in wrong.stderr


@pytest.mark.postgres
@pytest.mark.django_db
def test_on_postgresql_values_are_bound_there_and_a_statement_is_prepared_after_five_runs():
    prepared = "SELECT count(*) FROM pg_prepared_statements WHERE statement = 'SELECT $1::int + 40'"
    with connection.cursor() as cursor:
        for _ in range(5):
            cursor.execute("SELECT %s::int + 40", [2])  # bound there: PostgreSQL sees $1, not the value
        cursor.execute(prepared)
        assert cursor.fetchone() == (0,)  # five runs: not yet
        cursor.execute("SELECT %s::int + 40", [2])
        assert cursor.fetchone() == (42,)
        cursor.execute(prepared)
        assert cursor.fetchone() == (1,)


def test_redis_channel_layer_chooses_lists_and_refuses_a_name_it_does_not_know():
    lists = run_settings(REDIS_URL="redis://cache.internal:6379/0", REDIS_CHANNEL_LAYER="lists")
    assert lists.returncode == 0, lists.stderr
    assert json.loads(lists.stdout)["layer"] == "channels_redis.core.RedisChannelLayer"
    unknown = run_settings(REDIS_URL="redis://cache.internal:6379/0", REDIS_CHANNEL_LAYER="streams")
    assert unknown.returncode != 0
    assert "REDIS_CHANNEL_LAYER must be one of lists, pubsub, not 'streams'" in unknown.stderr


def test_production_without_secret_key_is_refused_with_a_clear_message():
    result = run_settings(DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_production_with_secret_key_starts():
    result = run_settings(DEBUG="0", SECRET_KEY="x" * 60, ALLOWED_HOSTS="creatorflow.example.com")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["debug"] is False
