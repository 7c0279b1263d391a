"""The app in a real browser: Playwright driving Debian's Chromium (apt-get install chromium; never
`playwright install`). Opens the page, predicts and reads the probability bars, trains briefly and
watches the loss plot grow, and saves a screenshot of every tab."""

import hashlib
import os
import tempfile
from pathlib import Path

import pytest
from app_helpers import launch, make_context

# gradio 6.31 itself uses pandas options that pandas 3 deprecates
pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")
CHROMIUM = "/usr/bin/chromium"
# Screenshots go to a temporary folder; MTL_SCREENSHOTS=docs/screenshots refreshes the README's.
SHOTS = Path(os.environ.get("MTL_SCREENSHOTS") or tempfile.mkdtemp(prefix="mtl-shots-"))


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's Chromium (apt-get install -y chromium); CI does")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: pip install -r requirements-dev.txt")
    demo, url = launch(make_context(tmp_path_factory.mktemp("saved")))
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            page.set_default_timeout(90_000)
            page.goto(url)
            yield page
            browser.close()
    finally:
        demo.close()


def open_tab(page, name):
    page.get_by_role("tab", name=name, exact=True).click()


def shoot(page, name):
    page.wait_for_timeout(600)  # let plots and fonts settle
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def bars(page, task) -> dict:
    meters = page.locator(f"#label-{task} meter")
    return {m.get_attribute("aria-label"): float(m.get_attribute("value")) for m in meters.all()}


def test_embeddings_open_with_a_heatmap(page):
    from playwright.sync_api import expect

    expect(page.locator("#heatmap .mtl-heatmap td")).to_have_count(64)  # 8 prefilled sentences, 8 x 8
    expect(page.get_by_text("Most similar:")).to_be_visible()
    shoot(page, "embeddings")


def test_predict_a_sentence_and_read_the_bars(page):
    from playwright.sync_api import expect

    open_tab(page, "Predict")
    page.locator("#predict-text textarea").fill("The striker scored twice as the home side won the cup final.")
    page.get_by_role("button", name="Predict", exact=True).click()
    expect(page.locator("#label-topic [data-testid='label-output-value']")).to_have_text("Sports")
    topic, sentiment = bars(page, "topic"), bars(page, "sentiment")
    assert len(topic) == 8 and len(sentiment) == 3
    assert max(topic, key=topic.get) == "Sports" and sum(topic.values()) == pytest.approx(1, abs=1e-3)
    expect(page.locator("#predict-info")).to_contain_text("ms for one forward pass")
    page.get_by_text("Review · Two stars: the room smelled of smoke").click()  # an example (a review)
    expect(page.locator("#label-topic [data-testid='label-output-value']")).to_have_text("Travel")
    expect(page.locator("#label-sentiment [data-testid='label-output-value']")).to_have_text("negative")
    shoot(page, "predict")


def test_train_briefly_and_watch_the_loss_plot_grow(page):
    from playwright.sync_api import expect

    open_tab(page, "Train")
    sentences = page.get_by_label("number input for Training sentences")
    sentences.fill("256")
    sentences.press("Enter")
    page.locator("#batch-size").get_by_text("8", exact=True).click()
    boxes = page.locator("#frozen-components")
    expect(page.get_by_label("number input for K: layers frozen from the bottom")).to_have_value("4")  # default
    boxes.get_by_text("layer.4 · 1.8M").click()  # freeze one more layer: the preset follows, as bottom:K with K=5
    expect(page.get_by_label("number input for K: layers frozen from the bottom")).to_have_value("5")
    expect(page.get_by_text("Trainable: 1,778,699 of")).to_be_visible()
    plot = page.locator("#loss-plot")
    seen = {hashlib.sha256(plot.screenshot()).hexdigest()}
    empty = next(iter(seen))
    page.get_by_role("button", name="▶ Start training").click()
    progress = page.locator("#train-progress")
    expect(progress).to_contain_text("step", timeout=90_000)
    while "Finished" not in progress.inner_text():
        seen.add(hashlib.sha256(plot.screenshot()).hexdigest())
        page.wait_for_timeout(150)
    seen.add(hashlib.sha256(plot.screenshot()).hexdigest())
    assert len(seen - {empty}) >= 2  # the plot changed while the model trained, not only at the end
    expect(page.locator("#train-status")).to_contain_text("Training finished")
    expect(page.locator("#val-table")).to_contain_text("★")
    expect(page.locator("#model-info")).to_contain_text("trained here on 256 sentences")
    shoot(page, "train")


@pytest.mark.parametrize("tab", ["Experiments", "About"])
def test_the_other_tabs(page, tab):
    from playwright.sync_api import expect

    open_tab(page, tab)
    expect(page.get_by_text("really do, measured" if tab == "Experiments" else "How the heads share")).to_be_visible()
    shoot(page, tab.lower())
    assert os.path.getsize(SHOTS / f"{tab.lower()}.png") > 10_000


def test_score_the_active_model_with_logme(page):
    from playwright.sync_api import expect

    open_tab(page, "Experiments")
    open_tab(page, "LogME (no training)")
    expect(page.get_by_text("Spearman").first).to_be_visible()  # the committed comparison with the curve
    page.get_by_role("button", name="Score the layers with LogME").click()
    # LogME now encodes in chunks of 64 and lets predictions in between: allow it time on a loaded machine
    expect(page.get_by_text("training sentences in")).to_be_visible(timeout=120_000)
    expect(page.get_by_text("embeddings (0)").locator("visible=true").first).to_be_visible()
    shoot(page, "logme")
