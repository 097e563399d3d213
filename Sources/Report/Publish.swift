import Foundation
import Stencil
import Workers

/// publish: one HTML page from a Stencil (Jinja-style) template: every figure (plotly
/// figure JSON) inline and drawn by plotly.js, which sits beside the page
/// (`plotly.min.js`), so it works from file:// and from GitLab Pages with no network.
public struct Publisher {
  public struct Pipeline {
    public var jobs: [CIJobRow]
    /// The DAG (inline SVG) and the timeline (a plotly figure), when there is a ledger.
    public var dag: String?
    public var timeline: Plotly.Figure?
    /// Label and value (Labels.pipeline), in that order.
    public var facts: [(label: String, value: String)]

    public init(jobs: [CIJobRow], dag: String? = nil, timeline: Plotly.Figure? = nil, facts: [(label: String, value: String)] = []) {
      (self.jobs, self.dag, self.timeline, self.facts) = (jobs, dag, timeline, facts)
    }
  }

  public var title: String
  public var description: String
  public var source: String
  public var figures: FigureSet
  public var figureDirectory: String
  public var pipeline: Pipeline
  public var template: String

  public init(
    title: String, description: String, source: String, figures: FigureSet, figureDirectory: String, pipeline: Pipeline,
    template: String = Publisher.defaultTemplate
  ) {
    self.title = title
    self.description = description
    self.source = source
    self.figures = figures
    self.figureDirectory = figureDirectory
    self.pipeline = pipeline
    self.template = template
  }

  /// figures.json, plus every `*.plotly.json` of the directory it does not list (a
  /// user's own figures: title from `layout.title`, caption from `layout.meta.caption`).
  /// A directory with plotly files and no figures.json is fine (a pipeline without
  /// visualize); one with neither is refused.
  public static func figureSet(directory: String) throws -> FigureSet {
    let listed = "\(directory)/figures.json"
    var set = FileManager.default.fileExists(atPath: listed)
      ? try ItemAnalysis.readJSON(FigureSet.self, from: listed) : FigureSet(headline: "", figures: [], tables: [])
    let files = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".plotly.json") }.sorted()
    for file in files where !set.figures.contains(where: { $0.file == file }) {
      let layout = try figure("\(directory)/\(file)")["layout"] as? [String: Any]
      let title = (layout?["title"] as? String) ?? ((layout?["title"] as? [String: Any])?["text"] as? String)
      let caption = (layout?["meta"] as? [String: Any])?["caption"] as? String
      set.figures.append(FigureSet.Figure(file: file, title: title ?? String(file.dropLast(".plotly.json".count)), caption: caption ?? ""))
    }
    guard !set.figures.isEmpty || FileManager.default.fileExists(atPath: listed) else {
      throw WorkerError("publish: \(directory) has no figures.json and no *.plotly.json (run visualize, or write a plotly figure there)")
    }
    return set
  }

  /// A plotly figure file: a JSON object with a `data` list.
  static func figure(_ path: String) throws -> [String: Any] {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw WorkerError("publish: figure \(path) (listed in figures.json) is missing; rerun visualize")
    }
    guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], object["data"] is [Any] else {
      throw WorkerError("publish: \(path) is not a plotly figure (a JSON object with a \"data\" list, as plotly's fig.write_json writes)")
    }
    return object
  }

  /// JSON inside a <script> element: `</` would end the element early.
  static func scriptJSON(_ data: Data) -> String { String(decoding: data, as: UTF8.self).replacingOccurrences(of: "</", with: "<\\/") }

  public func render() throws -> String {
    let extensions = Extension()
    // Stencil does not escape on its own: every text goes through `html`; the figures'
    // JSON (made script-safe) and our own DAG SVG do not.
    extensions.registerFilter("html") { value in escape(value.map { "\($0)" } ?? "") }
    let environment = Environment(extensions: [extensions])
    var figureContext: [[String: Any]] = []
    for (index, figure) in figures.figures.enumerated() {
      let object = try Self.figure("\(figureDirectory)/\(figure.file)")
      figureContext.append([
        "number": index + 1, "title": figure.title, "caption": figure.caption,
        "json": Self.scriptJSON(try Plotly.json(object)),
      ])
    }
    let context: [String: Any] = [
      "title": title, "description": description, "source": source, "headline": figures.headline,
      "figures": figureContext,
      "tables": figures.tables.map { ["caption": $0.caption, "columns": $0.columns, "rows": $0.rows] as [String: Any] },
      "jobs": pipeline.jobs.map {
        ["name": $0.name, "stage": $0.stage, "scheduler": $0.scheduler, "id": $0.schedulerJob, "nodes": $0.nodes, "queued": $0.queued,
         "ran": $0.ran, "state": $0.state, "efficiency": $0.efficiency]
      },
      "dag": pipeline.dag ?? "",
      "timeline": try pipeline.timeline.map { Self.scriptJSON(try Plotly.json($0)) } ?? "",
      "pipeline": pipeline.facts.map { ["label": $0.label, "value": $0.value] },
      "generated": ISO8601DateFormatter().string(from: Date()),
    ]
    try Publisher.checkDelimiters(template)
    do {
      return try environment.renderTemplate(string: template, context: context)
    } catch {
      throw WorkerError("publish: the template does not render: \(error)")
    }
  }

  /// Stencil's lexer drops everything after a `{{`, `{%` or `{#` it cannot close (a page
  /// of 4 bytes, and no error): each must be closed before the next one opens.
  static func checkDelimiters(_ template: String) throws {
    let pairs: [(open: String, close: String)] = [("{{", "}}"), ("{%", "%}"), ("{#", "#}")]
    var rest = Substring(template)
    while let opening = pairs.compactMap({ pair in rest.range(of: pair.open).map { (pair, $0) } }).min(by: { $0.1.lowerBound < $1.1.lowerBound }) {
      let (pair, range) = opening
      let after = rest[range.upperBound...]
      let next = pairs.compactMap { after.range(of: $0.open)?.lowerBound }.min() ?? after.endIndex
      guard let close = after.range(of: pair.close), close.lowerBound < next else {
        let line = template[..<range.lowerBound].filter { $0 == "\n" }.count + 1
        throw WorkerError("publish: the template's \(pair.open) on line \(line) is not closed with \(pair.close)")
      }
      rest = after[close.upperBound...]
    }
  }

  public static let defaultTemplate = """
    <!DOCTYPE html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>{{ title|html }}</title>
    <style>
      body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1b1b1b; background: #fafafa; }
      main { max-width: 64rem; margin: 0 auto; padding: 1rem; }
      header p.headline { font-size: 1.15rem; background: #eef4fb; border-left: 4px solid #1f77b4; padding: .5rem .8rem; }
      figure { margin: 1.5rem 0; background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .5rem; }
      .plot { width: 100%; }
      figure svg.dag { display: block; max-width: 100%; height: auto; margin: 0 auto; }
      figcaption { font-size: .95rem; color: #444; margin-top: .4rem; }
      .scroll { overflow-x: auto; }
      table { border-collapse: collapse; margin: .5rem 0 1.5rem; font-size: .95rem; background: #fff; }
      th, td { border: 1px solid #ddd; padding: .3rem .55rem; text-align: left; white-space: nowrap; }
      th { background: #f0f0f0; }
      caption { text-align: left; font-weight: 600; padding: .3rem 0; }
      dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
      dt { font-weight: 600; }
      footer { color: #666; font-size: .85rem; margin: 2rem 0; }
      noscript { display: block; color: #a00; }
      @media (max-width: 40rem) { main { padding: .5rem; } figure { padding: .25rem; margin: 1rem 0; } }
    </style>
    </head>
    <body>
    <main>
    <header>
    <h1>{{ title|html }}</h1>
    {% if description %}<p>{{ description|html }}</p>{% endif %}
    {% if headline %}<p class="headline">{{ headline|html }}</p>{% endif %}
    </header>
    <noscript>The figures need JavaScript (plotly.js, shipped beside this page).</noscript>
    <section>
    <h2>Data source</h2>
    <p>{{ source|html }}</p>
    </section>
    <section>
    <h2>Figures</h2>
    {% for figure in figures %}
    <figure id="figure-{{ figure.number }}" class="plotly-figure">
    <div class="plot"></div>
    <script type="application/json">{{ figure.json }}</script>
    <figcaption><strong>Figure {{ figure.number }}. {{ figure.title|html }}.</strong> {{ figure.caption|html }}</figcaption>
    </figure>
    {% endfor %}
    </section>
    {% if tables %}
    <section>
    <h2>Analysis</h2>
    {% for table in tables %}
    <div class="scroll"><table>
    <caption>{{ table.caption|html }}</caption>
    <tr>{% for column in table.columns %}<th>{{ column|html }}</th>{% endfor %}</tr>
    {% for row in table.rows %}<tr>{% for cell in row %}<td>{{ cell|html }}</td>{% endfor %}</tr>
    {% endfor %}</table></div>
    {% endfor %}
    </section>
    {% endif %}
    <section id="pipeline">
    <h2>Pipeline</h2>
    {% if pipeline %}<dl>{% for entry in pipeline %}<dt>{{ entry.label|html }}</dt><dd>{{ entry.value|html }}</dd>{% endfor %}</dl>{% endif %}
    {% if jobs %}
    <figure id="dag"><div class="scroll">{{ dag }}</div>
    <figcaption><strong>The CI jobs.</strong> An arrow for each job another one needs; green ended well, red did not, blue is still running (this page is written by the publish job).</figcaption></figure>
    {% if timeline %}
    <figure id="timeline" class="plotly-figure">
    <div class="plot"></div>
    <script type="application/json">{{ timeline }}</script>
    <figcaption><strong>Timeline.</strong> One bar per Slurm job or array task, in seconds from the pipeline's first submission: grey while it waited in the queue, coloured while it ran.</figcaption>
    </figure>
    {% endif %}
    <div class="scroll"><table id="jobs">
    <caption>The pipeline's jobs as the executor ran them</caption>
    <tr><th>CI job</th><th>stage</th><th>scheduler job</th><th>nodes</th><th>queued</th><th>ran</th><th>state</th><th>efficiency (like seff)</th></tr>
    {% for job in jobs %}<tr><td>{{ job.name|html }}</td><td>{{ job.stage|html }}</td><td>{{ job.scheduler|html }} {{ job.id|html }}</td><td>{{ job.nodes|html }}</td><td>{{ job.queued|html }}</td><td>{{ job.ran|html }}</td><td>{{ job.state|html }}</td><td>{% if job.efficiency %}{{ job.efficiency|html }}{% else %}not measured{% endif %}</td></tr>
    {% endfor %}</table></div>
    {% else %}
    <p>No jobs ledger was available (run through the ci-slurm executor to get one).</p>
    {% endif %}
    </section>
    <footer>Generated {{ generated }} by ci-worker publish.</footer>
    </main>
    <script src="plotly.min.js"></script>
    <script>
    // Each figure's JSON sits beside its plot; plotly.js draws it to the width of the
    // page (responsive), keeping the figure's height, its menus and sliders.
    document.querySelectorAll('figure.plotly-figure').forEach(function (figure) {
      var spec = JSON.parse(figure.querySelector('script[type="application/json"]').textContent);
      var layout = spec.layout || {};
      delete layout.width;
      layout.autosize = true;
      // No pop-up tips: the captions say how to zoom and reset.
      Plotly.newPlot(figure.querySelector('.plot'), spec.data || [], layout, {responsive: true, displaylogo: false, showTips: false});
    });
    </script>
    </body>
    </html>

    """
}
