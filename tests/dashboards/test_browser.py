"""The dashboard in a real browser: Streamlit on 127.0.0.1 driven through Debian's Chromium.

Two apps run for the module: one on the dataset `audiomill clean` made from the demo corpus (with
the curated copy to compare against), one on the curated copy (q_*/asr_* columns, a policy, policy
rejects). Screenshots of every page land in artifacts/dashboard/.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import polars as pl
import pytest

from audiomill import layout, schema
from audiomill.dashboards import data, launch, queries
from audiomill.dashboards.views import fmt_count, fmt_hours

TOKEN_MODEL = "speech-tokens@2"  # curated_dataset's token set (conftest)

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync", "--disable-quic"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "dashboard"
TIMEOUT_MS = 60_000
_RUN_DONE = """after => {
    const marks = document.querySelectorAll('.am-run-done');
    const app = document.querySelector('[data-testid="stApp"]');
    return marks.length > 0 && Number(marks[marks.length - 1].dataset.run) > after
        && app !== null && app.dataset.testScriptState === 'notRunning';
}"""


@pytest.fixture(scope="module")
def apps(clean_dataset, curated_dataset):
    """{"plain": url, "curated": url}: the two apps, started together and stopped at the end."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} missing: run `make system-deps`")
    started = {}
    try:
        for name, root, compare in (("plain", clean_dataset, [str(curated_dataset)]), ("curated", curated_dataset, [])):
            port = launch.free_port()
            started[name] = (f"http://127.0.0.1:{port}",
                             launch.start_dashboard(str(root), port, compare=compare, quiet=True))
        for url, process in started.values():
            launch.wait_until_ready(url, process, timeout_s=90)
        yield {name: url for name, (url, _) in started.items()}
    finally:
        launch.stop(*(process for _, process in started.values()))


@pytest.fixture(scope="module")
def browser(apps):
    from playwright.sync_api import sync_playwright

    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


def _runs(page) -> int:
    return page.evaluate("() => { const m = document.querySelectorAll('.am-run-done');"
                         " return m.length ? Number(m[m.length - 1].dataset.run) : 0; }")


def _open(page, url: str) -> None:
    page.goto(url)
    page.wait_for_function(_RUN_DONE, arg=0, timeout=TIMEOUT_MS)
    _no_errors(page)


def _after(page, action) -> None:
    """Do ``action`` (a widget change) and wait for the rerun it triggers to finish."""
    before = _runs(page)
    action()
    page.wait_for_function(_RUN_DONE, arg=before, timeout=TIMEOUT_MS)
    _no_errors(page)


def _no_errors(page) -> None:
    errors = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]').all_inner_texts()
    assert not errors, errors


def _metric(page, label: str, nth: int = 0) -> str:
    label_match = page.locator('[data-testid="stMetricLabel"]', has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))
    metric = page.locator('[data-testid="stMetric"]', has=label_match).nth(nth)
    return metric.locator('[data-testid="stMetricValue"]').inner_text().strip()


def _selected(page, label: str) -> str:
    """The value a selectbox shows (Streamlit renders it as a combobox input)."""
    return page.get_by_role("combobox", name=label, exact=True).input_value().strip()


def _plotted(ds: data.Dataset) -> list[str]:
    """Metrics the Quality page draws a chart for: all but those with one value in every row."""
    frames = queries.histograms(ds, data.metric_columns(ds.index_schema()))
    return [m for m, frame in frames.items() if not frame["bin_start"].equals(frame["bin_end"])]


def _shot(page, name: str) -> None:
    """Screenshot the whole page: Streamlit scrolls inside its main block, so grow the viewport."""
    height = page.evaluate("() => Math.max(...[...document.querySelectorAll("
                           "'[data-testid=stMain], [data-testid=stMainBlockContainer]')].map(e => e.scrollHeight))")
    page.set_viewport_size({"width": 1400, "height": min(int(height) + 150, 6000)})
    page.wait_for_timeout(500)  # charts re-lay out to the new size
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    page.set_viewport_size({"width": 1400, "height": 1000})


def test_overview_numbers_match_the_index(page, apps, clean_dataset):
    index = pl.read_parquet(clean_dataset / layout.INDEX_FILE)
    _open(page, apps["plain"])
    _shot(page, "overview")
    assert _metric(page, "segments") == fmt_count(index.height)
    assert _metric(page, "hours out") == fmt_hours(index[schema.AUDIO_DURATION_S].sum() / 3600)
    assert _metric(page, "shards") == fmt_count(index[schema.SHARD].n_unique())
    assert _metric(page, "kept sources") == fmt_count(index[schema.SOURCE_ID].n_unique())
    assert page.get_by_text("Per-stage throughput").is_visible()


def test_listen_filters_the_list_and_plays_segment_audio(page, apps, clean_dataset):
    index = pl.read_parquet(clean_dataset / layout.INDEX_FILE)
    _open(page, f"{apps['plain']}/listen")
    assert _metric(page, "matching segments") == fmt_count(index.height)
    assert _selected(page, "segment") == index[schema.KEY][0]
    threshold = round(float(index[schema.AUDIO_DURATION_S].median()), 2)
    expected = index.filter(pl.col(schema.AUDIO_DURATION_S) >= threshold)
    assert 0 < expected.height < index.height
    field = page.get_by_label(f"{schema.AUDIO_DURATION_S} min")
    _after(page, lambda: (field.fill(str(threshold)), field.press("Enter")))
    assert _metric(page, "matching segments") == fmt_count(expected.height)
    key = _selected(page, "segment")
    assert key == expected[schema.KEY][0]
    row = index.filter(pl.col(schema.KEY) == key).row(0, named=True)
    audio = page.locator("audio").first
    audio.wait_for(state="attached")
    fetched = audio.evaluate("""async el => { const bytes = new Uint8Array(await (await fetch(el.src)).arrayBuffer());
                                return [bytes.length, String.fromCharCode(...bytes.slice(0, 4))]; }""")
    assert fetched == [row[schema.FLAC_BYTES], "fLaC"]
    duration = audio.evaluate("""el => new Promise((resolve, reject) => {
        if (el.readyState >= 1 && el.duration > 0) { resolve(el.duration); return; }
        el.addEventListener('loadedmetadata', () => resolve(el.duration));
        el.addEventListener('error', () => reject(new Error('media error ' + (el.error && el.error.code))));
        el.load(); })""")
    assert duration == pytest.approx(row[schema.AUDIO_DURATION_S], abs=0.05)
    _shot(page, "listen")


def test_every_page_renders_its_numbers(page, apps, clean_dataset, curated_dataset):
    rejects = pl.read_parquet(clean_dataset / layout.REJECTS_FILE)
    index = pl.read_parquet(clean_dataset / layout.INDEX_FILE)
    _open(page, f"{apps['plain']}/rejects")
    assert _metric(page, "rejected rows") == fmt_count(rejects.height)
    _shot(page, "rejects")
    _open(page, f"{apps['plain']}/shards")
    assert _metric(page, "shards") == fmt_count(index[schema.SHARD].n_unique())
    assert _metric(page, "samples") == fmt_count(index.height)
    _shot(page, "shards")
    _open(page, f"{apps['plain']}/quality")
    ds = data.open_dataset(str(clean_dataset))
    for rule in ds.policy():  # `clean` records its default policy; a dataset without one says so
        assert page.get_by_text(rule.describe(), exact=True).first.is_visible()
    if not ds.policy():
        assert page.get_by_text("No filter policy recorded").is_visible()
    charts = page.locator('[data-testid="stVegaLiteChart"]')
    assert charts.count() == len(_plotted(ds))
    _shot(page, "quality")
    _open(page, f"{apps['plain']}/rounds")
    assert page.get_by_text("labels in this dataset yet").is_visible()
    _open(page, f"{apps['plain']}/tokens")
    assert page.get_by_text("token tables in this dataset yet").is_visible()
    _open(page, f"{apps['plain']}/licensing")
    unlicensed = index.filter(pl.col(schema.PROV_LICENSE).is_null()).height
    assert _metric(page, "segments without license") == fmt_count(unlicensed)
    assert _metric(page, "takedowns") == fmt_count(0)
    _shot(page, "licensing")
    _open(page, f"{apps['plain']}/compare")
    curated_rows = pl.read_parquet(curated_dataset / layout.INDEX_FILE).height
    assert [_metric(page, "segments", n) for n in (0, 1)] == [fmt_count(index.height), fmt_count(curated_rows)]
    _shot(page, "compare")


def test_quality_draws_policy_thresholds_for_discovered_metrics(page, apps, curated_dataset):
    ds = data.open_dataset(str(curated_dataset))
    metrics = data.metric_columns(ds.index_schema())
    assert {"q_snr_db", "asr_avg_logprob"} <= set(metrics)
    _open(page, f"{apps['curated']}/quality")
    assert page.get_by_text("q_snr_db ≥ 10", exact=False).first.is_visible()
    assert page.get_by_text("asr_avg_logprob ≥ -1 and ≤ 0", exact=False).first.is_visible()
    charts = page.locator('[data-testid="stVegaLiteChart"]')
    charts.nth(len(_plotted(ds)) - 1).wait_for(state="attached")
    assert charts.count() == len(_plotted(ds))
    _shot(page, "quality_policy")
    _open(page, f"{apps['curated']}/tokens")
    tokens = pl.read_parquet(curated_dataset / "tokens" / TOKEN_MODEL / "part-000000.parquet")
    assert _metric(page, "token sets") == fmt_count(1)
    assert _metric(page, "skipped segments") == fmt_count(tokens[schema.TOK_SKIP_REASON].is_not_null().sum())
    assert page.get_by_text(f"Evaluation of {TOKEN_MODEL}").is_visible()
    _shot(page, "tokens")
    _open(page, f"{apps['curated']}/rounds")
    assert page.locator('[data-testid="stDataFrame"]').count() == 1
    assert page.get_by_text("No round has verified clips yet.").is_visible()
    _shot(page, "rounds")


def test_listen_browses_rejected_segments_and_languages(page, apps, curated_dataset):
    index = pl.read_parquet(curated_dataset / layout.INDEX_FILE)
    _open(page, f"{apps['curated']}/listen")
    assert _metric(page, "matching segments") == fmt_count(index.height)
    page.get_by_role("combobox", name="asr_language", exact=True).click()
    _after(page, lambda: page.get_by_role("option", name="de", exact=True).click())
    assert _metric(page, "matching segments") == fmt_count(index.filter(pl.col("asr_language") == "de").height)
    page.keyboard.press("Escape")  # close the dropdown: while open, the rest of the page is aria-hidden
    shown = index.filter(pl.col(schema.KEY) == _selected(page, "segment"))["asr_text"].item()
    assert page.get_by_text(shown, exact=True).is_visible()  # the transcript of the selected segment
    _after(page, lambda: page.get_by_text("rejected segments", exact=True).click())
    rejects = pl.read_parquet(curated_dataset / layout.REJECTS_FILE)
    assert _metric(page, "matching segments") == fmt_count(rejects[schema.KEY].drop_nulls().len())
    assert page.locator("audio").count() == 1
    _shot(page, "listen_rejected")
