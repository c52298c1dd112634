"""`dbmon metrics`: the anomaly detector and the forecast, offline, on a CSV series: exactly the
code and defaults the `anomaly` and `forecast` rules run."""

from __future__ import annotations

import json

import click

from monitor_app.analysis import series_csv
from monitor_app.analysis.anomaly_detector import SENSITIVITY, DetectorSettings, scan
from monitor_app.analysis.forecast import forecast as run_forecast
from monitor_app.alerting.config import parse_duration
from monitor_app.store.base import from_epoch


def parse_duration_option(text: str, name: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=name) from None
    if seconds <= 0:
        raise click.BadParameter("must be longer than zero", param_hint=name)
    return seconds


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return from_epoch(epoch).isoformat().replace("+00:00", "Z")


@click.group()
def metrics() -> None:
    """Offline analysis of a metric series."""


@metrics.command()
@click.option("--input", "path", required=True, help="CSV with the header timestamp,value")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("--direction", type=click.Choice(["up", "down", "both"]), default="both")
@click.option("--sensitivity", default="medium", help="low, medium, high or a score (robust sigmas)")
@click.option("--min-effect", type=float, default=0.0, help="smallest distance from the baseline worth a window")
@click.option("--for", "lasting", default="5m", help="persistence: 80 % of the steps in this span must breach")
def anomalies(path: str, fmt: str, direction: str, sensitivity: str, min_effect: float, lasting: str) -> None:
    """Anomaly windows in one series."""
    threshold = SENSITIVITY.get(sensitivity)
    if threshold is None:
        try:
            threshold = float(sensitivity)
        except ValueError:
            raise click.BadParameter("low, medium, high or a number", param_hint="--sensitivity") from None
    settings = DetectorSettings.lasting(parse_duration_option(lasting, "--for"), direction=direction,
                                        sensitivity=threshold, min_effect=min_effect)
    windows = scan(series_csv.read(path), settings).windows
    rows = [{"start": _iso(w.start), "end": _iso(w.end), "direction": w.direction, "score": round(w.peak_score, 2),
             "baseline": w.baseline, "peak": w.peak_value} for w in windows]
    if fmt == "json":
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo("no anomalies")
    for r in rows:
        click.echo(f"{r['start']} .. {r['end'] or 'ongoing'}  {r['direction']:<4}  score {r['score']:g}  "
                   f"peak {r['peak']:g} vs baseline {r['baseline']:g}")


@metrics.command()
@click.option("--input", "path", required=True, help="CSV with the header timestamp,value")
@click.option("--threshold", type=float, required=True)
@click.option("--window", default="24h", help="trend window; should span a workload cycle")
@click.option("--direction", type=click.Choice(["up", "down", "auto"]), default="auto",
              help="up: a limit reached from below; down: from above; auto: the side the last point is on")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="json")
def forecast(path: str, threshold: float, window: str, direction: str, fmt: str) -> None:
    """Slope and time until the series reaches THRESHOLD, from its last point."""
    result = run_forecast(series_csv.read(path), threshold, parse_duration_option(window, "--window"), direction)
    out = {"slope_per_hour": result.slope_per_hour, "eta": _iso(result.eta),
           "hours_to_threshold": None if result.hours_to_threshold is None else round(result.hours_to_threshold, 3)}
    if fmt == "json":
        click.echo(json.dumps(out))
    elif out["eta"] is None:
        click.echo(f"slope {out['slope_per_hour']}/h; the threshold is not being approached")
    else:
        click.echo(f"slope {out['slope_per_hour']:g}/h; reaches {threshold:g} in {out['hours_to_threshold']:g} h "
                   f"({out['eta']})")
