import pytest
from django.core.management import CommandError, call_command

from realtime.models import DashboardMetric

pytestmark = pytest.mark.django_db


def test_metrics_resync_reports_drift_per_creator_and_fixes_it(creator, make_creator, make_product, capsys):
    other = make_creator("bob")
    make_product(creator, stock=5)
    make_product(other, stock=5)
    call_command("metrics_resync")
    capsys.readouterr()
    DashboardMetric.objects.filter(creator=creator, metric_key="total_products").update(value=7)
    call_command("metrics_resync")
    output = capsys.readouterr().out
    assert "alice: inventory.total_products was 7, fixed to 1" in output
    assert "bob: all metrics matched" in output
    assert "Resynced 2 creator(s); 1 had drift, now fixed." in output
    assert DashboardMetric.objects.get(creator=creator, metric_key="total_products").value == 1


def test_metrics_resync_for_one_creator(creator, make_creator, capsys):
    make_creator("bob")
    call_command("metrics_resync", "--creator", "alice")
    assert "Resynced 1 creator(s)" in capsys.readouterr().out


def test_metrics_resync_names_an_unknown_creator():
    with pytest.raises(CommandError, match="No creator named 'nobody'"):
        call_command("metrics_resync", "--creator", "nobody")
