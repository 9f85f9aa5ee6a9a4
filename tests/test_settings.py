"""Settings come from the environment; checked in fresh interpreters so nothing leaks between runs."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE = (
    "import django, json; from django.conf import settings; django.setup(); "
    "print(json.dumps({'engine': settings.DATABASES['default']['ENGINE'], "
    "'pool': settings.DATABASES['default'].get('OPTIONS', {}).get('pool'), "
    "'conn_max_age': settings.DATABASES['default'].get('CONN_MAX_AGE'), "
    "'layer': settings.CHANNEL_LAYERS['default']['BACKEND'], 'debug': settings.DEBUG}))"
)


def run_settings(**env):
    clean = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "REDIS_URL", "REDIS_CHANNEL_LAYER", "DEBUG", "SECRET_KEY"}}
    clean.update(env, DJANGO_SETTINGS_MODULE="creatorflow.settings")
    return subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60)


def test_no_environment_means_sqlite_and_the_in_memory_layer():
    result = run_settings()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "engine": "django.db.backends.sqlite3",
        "pool": None,
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
