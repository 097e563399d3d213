#!/usr/bin/env python3
"""Opens a published report in headless Chromium (Selenium + Debian's chromium-driver) the
way a reader would and checks it: no console errors, nothing fetched but file: URLs, every
plotly figure drawn, each control changes what is plotted (the signal menu, the sliders),
a hovered point's tooltip, text big enough and no sideways scrolling at 412 px; full-page
screenshots at 412 and 1280 px. Prints one line per check, exits 1 if any failed.

Usage: check_dashboard.py PAGE --kind svd|data --shots DIR [--figures N]
"""
import argparse
import base64
import json
import os
import shutil
import sys
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

failures = []


def check(ok, what):
    print(("ok: " if ok else "FAIL: ") + what, flush=True)
    if not ok:
        failures.append(what)


def driver_for(profile):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                 "--hide-scrollbars", "--window-size=1280,1000"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def plots(driver):
    return driver.find_elements(By.CSS_SELECTOR, "figure.plotly-figure .js-plotly-plot")


# Waiting for the page to reach a state is not a timed assertion: the limit only stops a
# hung browser, nothing is measured.
def wait(driver, condition, what):
    try:
        WebDriverWait(driver, 60).until(lambda d: d.execute_script(condition))
        return True
    except Exception:
        check(False, "the page never reached: " + what)
        return False


def viewport(driver, width, height):
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})
    driver.execute_script("window.dispatchEvent(new Event('resize'))")
    wait(driver, """return Array.prototype.every.call(document.querySelectorAll('.js-plotly-plot'),
        function (gd) { return gd._fullLayout && Math.abs(gd._fullLayout.width - gd.clientWidth) <= 1; })""",
         f"every plot laid out to its width at {width} px")


def screenshot(driver, path):
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics["cssContentSize"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
    with open(path, "wb") as out:
        out.write(base64.b64decode(shot["data"]))
    check(os.path.getsize(path) > 30000, f"screenshot {os.path.basename(path)} ({os.path.getsize(path)} bytes) has content")


def show(driver, element):
    driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", element)


def hover_point(driver, plot_index, trace, point):
    """Moves the mouse onto a data point (its pixel from plotly's own axes) and returns
    the tooltip's text."""
    gd = plots(driver)[plot_index]
    show(driver, gd)
    where = driver.execute_script("""
        var gd = arguments[0], t = gd._fullData[arguments[1]], i = arguments[2];
        var xa = gd._fullLayout[t.xaxis.replace('x', 'xaxis')], ya = gd._fullLayout[t.yaxis.replace('y', 'yaxis')];
        var box = gd.getBoundingClientRect();
        var x = t.type === 'bar' && t.orientation !== 'h' ? xa.c2p(t.x[i]) : xa.c2p(t.orientation === 'h' ? (t.base ? t.base[i] + t.x[i] / 2 : t.x[i]) : t.x[i]);
        var y = t.orientation === 'h' ? ya.c2p(t.y[i]) : (t.type === 'bar' ? ya.c2p(t.y[i] / 2) : ya.c2p(t.y[i]));
        return {x: box.left + xa._offset + x, y: box.top + ya._offset + y};""", gd, trace, point)
    actions = ActionChains(driver)
    actions.w3c_actions.pointer_action.move_to_location(int(where["x"]), int(where["y"]))
    actions.perform()
    wait(driver, "return document.querySelectorAll('.hoverlayer .hovertext').length > 0", "a tooltip after hovering")
    return " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, ".hoverlayer .hovertext"))


def click_at(driver, element):
    """A real mouse click at the middle of an element (SVG groups included)."""
    box = driver.execute_script("var b = arguments[0].getBoundingClientRect(); return {x: b.left + b.width / 2, y: b.top + b.height / 2};", element)
    actions = ActionChains(driver)
    actions.w3c_actions.pointer_action.move_to_location(int(box["x"]), int(box["y"]))
    actions.w3c_actions.pointer_action.click()
    actions.perform()


def slider_labels(gd):
    return [e.text for e in gd.find_elements(By.CSS_SELECTOR, ".slider-labels .slider-label")]


def click_slider_step(driver, plot_index, label):
    """Clicks on the rail under a step's label, as a reader would (plotly moves the grip there)."""
    gd = plots(driver)[plot_index]
    show(driver, gd)
    for text in gd.find_elements(By.CSS_SELECTOR, ".slider-labels .slider-label"):
        if text.text == label:
            box = driver.execute_script("var b = arguments[0].getBoundingClientRect(); return {x: b.left + b.width / 2, y: b.top + b.height / 2};", text)
            rail = driver.execute_script("""var r = arguments[0].querySelector('.slider-rail-touch-rect').getBoundingClientRect();
                return {y: r.top + r.height / 2};""", gd)
            actions = ActionChains(driver)
            actions.w3c_actions.pointer_action.move_to_location(int(box["x"]), int(rail["y"]))
            actions.w3c_actions.pointer_action.click()
            actions.perform()
            return True
    check(False, f"a slider step labelled {label!r}")
    return False


def state(driver, plot_index):
    return driver.execute_script("""var gd = arguments[0], l = gd._fullLayout;
        return {title: l.title.text, xrange: l.xaxis.range, yrange: l.yaxis.range,
                traces: gd.data.length, y0: gd.data.map(function (t) { return t.y ? Array.prototype.slice.call(t.y, 0, 50) : null; }),
                readout: (gd.querySelector('.slider-group > text.slider-label') || {}).textContent || ''};""", plots(driver)[plot_index])


def check_data(driver):
    before = state(driver, 0)
    check(before["traces"] >= 4, f"the signals figure has every item's line and per-phase dots ({before['traces']} traces)")
    check(len(driver.find_elements(By.CSS_SELECTOR, "figure.plotly-figure .js-plotly-plot")[0]
              .find_elements(By.CSS_SELECTOR, ".layer-below .shapelayer path, .shapelayer path")) >= 1, "the task window is shaded")
    gd = plots(driver)[0]
    show(driver, gd)
    click_at(driver, gd.find_element(By.CSS_SELECTOR, ".updatemenu-header"))
    wait(driver, "return document.querySelectorAll('.updatemenu-dropdown-button').length > 0", "the signal menu open")
    buttons = gd.find_elements(By.CSS_SELECTOR, ".updatemenu-dropdown-button-group .updatemenu-dropdown-button")
    labels = [b.text for b in buttons]
    check(len(buttons) >= 2, f"the signal menu lists the signals: {labels}")
    if len(buttons) >= 2:
        click_at(driver, buttons[1])
        after = state(driver, 0)
        check(after["y0"] != before["y0"], "choosing another signal changes the plotted values")
        check(after["yrange"] != before["yrange"], f"and the y range ({before['yrange']} -> {after['yrange']})")
        check(after["title"] != before["title"], f"and the title: {after['title']!r}")
    legend = [e for e in gd.find_elements(By.CSS_SELECTOR, ".legend .traces") if e.text.strip()]
    check(len(legend) >= 2, f"the legend lists the items: {[e.text for e in legend]}")
    if len(legend) >= 2:
        # plotly acts on a legend click once its double-click window has passed: wait for
        # the state, which also keeps the second click from making a double-click.
        visible = "return document.querySelectorAll('.js-plotly-plot')[0]._fullData[1].visible"
        click_at(driver, legend[1].find_element(By.CSS_SELECTOR, ".legendtoggle"))
        check(wait(driver, visible + " === 'legendonly'", "the legend click applied"), f"clicking {legend[1].text!r} in the legend hides its line")
        click_at(driver, legend[1].find_element(By.CSS_SELECTOR, ".legendtoggle"))
        check(wait(driver, visible + " === true", "the second legend click applied"), "and clicking again shows it")
    tooltip = hover_point(driver, 0, 0, 40)
    check(tooltip.startswith("sub-") and any(c.isdigit() for c in tooltip), f"hovering a point shows its value: {tooltip!r}")
    labels = slider_labels(gd)
    check(len(labels) >= 3, f"the time-window slider has steps: {labels}")
    if len(labels) >= 3 and click_slider_step(driver, 0, labels[2]):
        moved = state(driver, 0)
        check(moved["xrange"] != before["xrange"], f"moving the slider changes the time range ({before['xrange']} -> {moved['xrange']})")
        check(moved["readout"].endswith(labels[2]), f"and the readout says so: {moved['readout']!r}")
        # Back to the whole recording, so the screenshots show the task window.
        click_slider_step(driver, 0, labels[0])
        check(state(driver, 0)["xrange"] == before["xrange"], "the slider's first step shows the whole recording again")
    # Zoom: drag across a third of the plot; a double-click zooms out again.
    show(driver, gd)
    area = driver.execute_script("var b = arguments[0].querySelector('.nsewdrag').getBoundingClientRect(); return {x: b.left, y: b.top, w: b.width, h: b.height};", gd)
    actions = ActionChains(driver)
    pointer = actions.w3c_actions.pointer_action
    pointer.move_to_location(int(area["x"] + area["w"] * 0.3), int(area["y"] + area["h"] * 0.5))
    pointer.pointer_down()
    pointer.move_to_location(int(area["x"] + area["w"] * 0.6), int(area["y"] + area["h"] * 0.6))
    pointer.pointer_up()
    actions.perform()
    zoomed = state(driver, 0)["xrange"]
    check(zoomed[1] - zoomed[0] < 0.5 * (before["xrange"][1] - before["xrange"][0]), f"dragging on the plot zooms in ({zoomed})")
    actions = ActionChains(driver)
    actions.w3c_actions.pointer_action.move_to_location(int(area["x"] + area["w"] * 0.5), int(area["y"] + area["h"] * 0.5))
    actions.w3c_actions.pointer_action.double_click()
    actions.perform()
    check(wait(driver, f"return JSON.stringify(document.querySelectorAll('.js-plotly-plot')[0]._fullLayout.xaxis.range) === '{json.dumps(before['xrange'], separators=(',', ':'))}'",
               "the zoom reset"), "double-clicking zooms out again")


def check_svd(driver):
    before = state(driver, 0)
    gd = plots(driver)[0]
    labels = slider_labels(gd)
    check(len(labels) >= 2, f"the k slider has steps: {labels}")
    if len(labels) >= 2 and click_slider_step(driver, 0, labels[0]):
        after = state(driver, 0)
        check(after["title"] != before["title"] and f"k = {labels[0]} blocks" in after["title"], f"moving the slider to k = {labels[0]} says the error at k: {after['title']!r}")
        check(after["y0"][-1] != before["y0"][-1], "and redraws the histogram for the first k seeds")
    bars = driver.execute_script("var d = arguments[0]._fullData; for (var i = 0; i < d.length; i++) if (d[i].type === 'bar') return i; return -1;", gd)
    check(bars >= 0, "the alignment histogram is a bar trace")
    if bars >= 0:
        counts = driver.execute_script("return arguments[0].data[arguments[1]].y", gd, bars)
        point = max(range(len(counts)), key=lambda i: counts[i])
        tooltip = hover_point(driver, 0, bars, point)
        edges = tooltip[tooltip.find("["):].strip() if "[" in tooltip else ""
        low, high = (edges.strip("[]()").split(", ") + ["", ""])[:2] if edges else ("", "")
        check(bool(edges) and low != high, f"a bar's tooltip gives its exact, distinct edges: {tooltip!r}")
    tooltip = hover_point(driver, 0, 0, 0)
    check("k = " in tooltip, f"hovering the error curve shows k and the error: {tooltip!r}")
    if labels:
        click_slider_step(driver, 0, labels[-1])  # all the seeds again, for the screenshots


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("page")
    parser.add_argument("--kind", choices=["svd", "data"], required=True)
    parser.add_argument("--shots", required=True)
    parser.add_argument("--figures", type=int, default=2, help="plotly figures on the page (the timeline included)")
    args = parser.parse_args()
    os.makedirs(args.shots, exist_ok=True)
    page = "file://" + os.path.abspath(args.page)
    profile = tempfile.mkdtemp(prefix="check-dashboard-")
    driver = driver_for(profile)
    try:
        driver.get(page)
        wait(driver, f"return document.querySelectorAll('figure.plotly-figure .js-plotly-plot .main-svg').length >= {args.figures}",
             f"{args.figures} plotly figures drawn")
        check(len(plots(driver)) == args.figures, f"{len(plots(driver))} plotly figures (expected {args.figures})")
        check(len(driver.find_elements(By.CSS_SELECTOR, "svg.dag g.job")) > 0, "the DAG of CI jobs is drawn")
        states = driver.execute_script("return Array.prototype.map.call(document.querySelectorAll('#jobs tr td:nth-child(7)'), function (td) { return td.textContent; })")
        check("this job" in states and "running" not in states, f"the CI jobs table shows final states: {states}")
        if args.kind == "data":
            check_data(driver)
        else:
            check_svd(driver)
        for width, height in [(412, 915), (1280, 1000)]:
            viewport(driver, width, height)
            overflow = driver.execute_script("return document.scrollingElement.scrollWidth")
            check(overflow <= width + 1, f"at {width} px nothing scrolls sideways (page {overflow} px wide)")
            smallest = driver.execute_script("""return Math.min.apply(null, Array.prototype.map.call(
                document.querySelectorAll('.js-plotly-plot .main-svg text, svg.dag text'),
                function (t) { return t.textContent.trim() ? parseFloat(getComputedStyle(t).fontSize) : 99; }));""")
            check(smallest >= 11, f"at {width} px the smallest chart text is {smallest} px")
            # A tick or slider label reaching past its figure's edge is cut off on screen.
            cut = driver.execute_script("""var cut = [];
                document.querySelectorAll('.js-plotly-plot').forEach(function (gd) {
                  var frame = gd.querySelector('.main-svg').getBoundingClientRect();
                  gd.querySelectorAll('.xtick text, .ytick text, .x2tick text, .y2tick text, .slider-labels text').forEach(function (t) {
                    var b = t.getBoundingClientRect();
                    if (t.textContent && (b.left < frame.left - 0.5 || b.right > frame.right + 0.5)) cut.push(t.textContent);
                  });
                });
                return cut;""")
            check(not cut, f"at {width} px no tick or slider label is cut at a figure's edge {cut[:5]}")
            screenshot(driver, os.path.join(args.shots, f"{args.kind}-{width}.png"))
        errors = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        check(not errors, f"no console errors {errors[:3]}")
        fetched = set()
        for entry in driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            # The page's requests only (the browser's own start page makes chrome:// ones).
            if message["method"] == "Network.requestWillBeSent" and message["params"].get("documentURL", "").startswith("file:"):
                fetched.add(message["params"]["request"]["url"].split("?")[0][:120])
        outside = sorted(url for url in fetched if not url.startswith(("file:", "data:")))
        check(not outside and any(url.endswith("plotly.min.js") for url in fetched), f"only file: requests (plotly.min.js beside the page); others: {outside[:5]}")
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    print(f"check_dashboard: {args.kind}: {'FAILED ' + str(len(failures)) if failures else 'all checks passed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
