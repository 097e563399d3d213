public import Foundation
import Stencil
import Workers

/// One CI job of the pipeline as the executor driver saw it (a line of the ledger that
/// ci-run appends to `$CI_SLURM_JOBS_LEDGER`), completed with Slurm's accounting.
public struct CIJobRow: Equatable, Sendable {
  public var name: String
  public var stage: String
  public var scheduler: String
  public var schedulerJob: String
  public var nodes: String
  public var queued: String
  public var ran: String
  public var state: String

  public init(name: String, stage: String, scheduler: String, schedulerJob: String, nodes: String, queued: String, ran: String, state: String) {
    (self.name, self.stage, self.scheduler, self.schedulerJob) = (name, stage, scheduler, schedulerJob)
    (self.nodes, self.queued, self.ran, self.state) = (nodes, queued, ran, state)
  }
}

/// The ledger's records (JSON Lines): a "submitted" record per scheduler job and an
/// "ended" one when ci-run saw it end.
public struct LedgerRecord: Codable, Equatable, Sendable {
  public var event: String
  public var ciJobID: String
  public var ciJobName: String
  public var ciJobStage: String
  public var scheduler: String
  public var schedulerJobID: String
  public var host: String?
  public var time: Double
  public var result: String?

  public init(
    event: String, ciJobID: String, ciJobName: String, ciJobStage: String, scheduler: String, schedulerJobID: String, host: String?,
    time: Double, result: String?
  ) {
    (self.event, self.ciJobID, self.ciJobName, self.ciJobStage) = (event, ciJobID, ciJobName, ciJobStage)
    (self.scheduler, self.schedulerJobID, self.host, self.time, self.result) = (scheduler, schedulerJobID, host, time, result)
  }

  enum CodingKeys: String, CodingKey {
    case event, scheduler, host, time, result
    case ciJobID = "ci_job_id"
    case ciJobName = "ci_job_name"
    case ciJobStage = "ci_job_stage"
    case schedulerJobID = "scheduler_job_id"
  }
}

/// What `sacct -X -n -P -o JobID,NodeList,Submit,Start,End,State` says about one job
/// (array tasks folded into their job).
public struct AccountingRow: Equatable, Sendable {
  public var nodes: [String]
  public var submit: Date?
  public var start: Date?
  public var end: Date?
  public var states: [String]
  public var tasks: Int
}

public enum JobTable {
  /// Parses sacct's parsable output; times are the controller's local time, as sacct
  /// prints them (`2026-11-23T10:31:09`, or `Unknown`/`None` while not there yet).
  public static func parseSacct(_ text: String, timeZone: TimeZone = .current) -> [String: AccountingRow] {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = timeZone
    formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss"
    // Job ids can come back after the accounting database outlived a controller reset:
    // for each full id (array task included) the latest submission wins.
    var latest: [String: [String]] = [:]
    var order: [String] = []
    for line in text.split(whereSeparator: \.isNewline) {
      let fields = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
      guard fields.count >= 6 else { continue }
      if let seen = latest[fields[0]] {
        if fields[2] >= seen[2] { latest[fields[0]] = fields }
      } else {
        latest[fields[0]] = fields
        order.append(fields[0])
      }
    }
    var rows: [String: AccountingRow] = [:]
    for id in order {
      let fields = latest[id]!
      let job = String(fields[0].split(separator: "_").first ?? "")
      guard !job.isEmpty, job.allSatisfy(\.isNumber) else { continue }
      var row = rows[job] ?? AccountingRow(nodes: [], submit: nil, start: nil, end: nil, states: [], tasks: 0)
      row.tasks += 1
      if !fields[1].isEmpty, fields[1] != "None assigned", !row.nodes.contains(fields[1]) { row.nodes.append(fields[1]) }
      if let submit = formatter.date(from: fields[2]) { row.submit = min(row.submit ?? submit, submit) }
      if let start = formatter.date(from: fields[3]) { row.start = min(row.start ?? start, start) }
      if let end = formatter.date(from: fields[4]) { row.end = max(row.end ?? end, end) }
      let state = String(fields[5].split(separator: " ").first ?? "")
      if !state.isEmpty, !row.states.contains(state) { row.states.append(state) }
      rows[job] = row
    }
    return rows
  }

  /// Folds the ledger into one row per scheduler job, in submission order, with the
  /// accounting where there is some (Slurm) and the ledger's own times otherwise (local).
  public static func rows(ledger: [LedgerRecord], accounting: [String: AccountingRow], now: Date = Date()) -> [CIJobRow] {
    let submitted = ledger.filter { $0.event == "submitted" }
    var ended: [String: LedgerRecord] = [:]
    for record in ledger where record.event == "ended" { ended[record.schedulerJobID] = record }
    return submitted.map { record in
      let end = ended[record.schedulerJobID]
      var row = CIJobRow(
        name: record.ciJobName, stage: record.ciJobStage, scheduler: record.scheduler, schedulerJob: record.schedulerJobID,
        nodes: record.host ?? "", queued: "0 s", ran: "", state: end?.result ?? "running")
      if let account = accounting[record.schedulerJobID.split(separator: "_").first.map(String.init) ?? ""] {
        row.nodes = account.nodes.joined(separator: ", ")
        if let submit = account.submit, let start = account.start { row.queued = duration(start.timeIntervalSince(submit)) } else {
          row.queued = "pending"
        }
        if let start = account.start { row.ran = duration((account.end ?? now).timeIntervalSince(start)) }
        // A job the ledger has not seen end (the report's own job) is still running,
        // whatever accounting caught mid-way.
        if end != nil, !account.states.isEmpty { row.state = account.states.joined(separator: ", ").lowercased() }
        if account.tasks > 1 { row.schedulerJob += " (\(account.tasks) tasks)" }
      } else {
        row.ran = duration((end.map { Date(timeIntervalSince1970: $0.time) } ?? now).timeIntervalSince(Date(timeIntervalSince1970: record.time)))
      }
      return row
    }
  }

  static func duration(_ seconds: TimeInterval) -> String {
    let value = max(0, seconds)
    if value < 60 { return String(format: "%.0f s", value) }
    if value < 3600 { return String(format: "%d min %02d s", Int(value) / 60, Int(value) % 60) }
    return String(format: "%d h %02d min", Int(value) / 3600, Int(value) % 3600 / 60)
  }

  public static func readLedger(_ path: String) throws -> [LedgerRecord] {
    guard let data = FileManager.default.contents(atPath: path) else { throw WorkerError("publish: cannot read the jobs ledger \(path)") }
    var records: [LedgerRecord] = []
    for (number, line) in String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated() where !line.isEmpty {
      do {
        records.append(try JSONDecoder().decode(LedgerRecord.self, from: Data(line.utf8)))
      } catch {
        throw WorkerError("publish: \(path):\(number + 1): not a ledger record")
      }
    }
    return records
  }
}

/// publish: one self-contained HTML page (inline SVG, inline CSS, no script) from a
/// Stencil (Jinja-style) template.
public struct Publisher {
  public var title: String
  public var description: String
  public var source: String
  public var figures: FigureSet
  public var figureDirectory: String
  public var jobs: [CIJobRow]
  public var pipeline: [String: String]
  public var template: String

  public init(
    title: String, description: String, source: String, figures: FigureSet, figureDirectory: String, jobs: [CIJobRow],
    pipeline: [String: String], template: String = Publisher.defaultTemplate
  ) {
    self.title = title
    self.description = description
    self.source = source
    self.figures = figures
    self.figureDirectory = figureDirectory
    self.jobs = jobs
    self.pipeline = pipeline
    self.template = template
  }

  public func render() throws -> String {
    let extensions = Extension()
    // Stencil does not escape on its own: every text goes through `html`, figures do not.
    extensions.registerFilter("html") { value in escape(value.map { "\($0)" } ?? "") }
    let environment = Environment(extensions: [extensions])
    var figureContext: [[String: Any]] = []
    for (index, figure) in figures.figures.enumerated() {
      let path = "\(figureDirectory)/\(figure.file)"
      guard let data = FileManager.default.contents(atPath: path) else {
        throw WorkerError("publish: figure \(path) (listed in figures.json) is missing; rerun visualize")
      }
      var svg = String(decoding: data, as: UTF8.self)
      guard svg.contains("<svg") else { throw WorkerError("publish: \(path) is not an SVG figure") }
      if let declaration = svg.range(of: "?>"), svg.hasPrefix("<?xml") { svg = String(svg[declaration.upperBound...]) }
      figureContext.append(["number": index + 1, "title": figure.title, "caption": figure.caption, "svg": svg])
    }
    let context: [String: Any] = [
      "title": title, "description": description, "source": source, "headline": figures.headline,
      "figures": figureContext,
      "tables": figures.tables.map { ["caption": $0.caption, "columns": $0.columns, "rows": $0.rows] as [String: Any] },
      "jobs": jobs.map {
        ["name": $0.name, "stage": $0.stage, "scheduler": $0.scheduler, "id": $0.schedulerJob, "nodes": $0.nodes, "queued": $0.queued,
         "ran": $0.ran, "state": $0.state]
      },
      "pipeline": pipeline.sorted { $0.key < $1.key }.map { ["key": $0.key, "value": $0.value] },
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
      main { max-width: 60rem; margin: 0 auto; padding: 1rem; }
      header p.headline { font-size: 1.15rem; background: #eef4fb; border-left: 4px solid #1f77b4; padding: .5rem .8rem; }
      figure { margin: 1.5rem 0; background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .5rem; }
      figure svg { display: block; width: 100%; height: auto; }
      figcaption { font-size: .92rem; color: #444; margin-top: .4rem; }
      .scroll { overflow-x: auto; }
      table { border-collapse: collapse; margin: .5rem 0 1.5rem; font-size: .92rem; background: #fff; }
      th, td { border: 1px solid #ddd; padding: .3rem .55rem; text-align: left; white-space: nowrap; }
      th { background: #f0f0f0; }
      caption { text-align: left; font-weight: 600; padding: .3rem 0; }
      dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
      dt { font-weight: 600; }
      footer { color: #666; font-size: .85rem; margin: 2rem 0; }
      @media (max-width: 40rem) { body { font-size: 15px; } main { padding: .5rem; } }
    </style>
    </head>
    <body>
    <main>
    <header>
    <h1>{{ title|html }}</h1>
    {% if description %}<p>{{ description|html }}</p>{% endif %}
    <p class="headline">{{ headline|html }}</p>
    </header>
    <section>
    <h2>Data source</h2>
    <p>{{ source|html }}</p>
    </section>
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
    <section>
    <h2>Figures</h2>
    {% for figure in figures %}
    <figure id="figure-{{ figure.number }}">
    {{ figure.svg }}
    <figcaption><strong>Figure {{ figure.number }}. {{ figure.title|html }}.</strong> {{ figure.caption|html }}</figcaption>
    </figure>
    {% endfor %}
    </section>
    <section>
    <h2>CI jobs</h2>
    {% if jobs %}
    <div class="scroll"><table>
    <caption>The pipeline's jobs as the executor ran them</caption>
    <tr><th>CI job</th><th>stage</th><th>scheduler job</th><th>nodes</th><th>queued</th><th>ran</th><th>state</th></tr>
    {% for job in jobs %}<tr><td>{{ job.name|html }}</td><td>{{ job.stage|html }}</td><td>{{ job.scheduler|html }} {{ job.id|html }}</td><td>{{ job.nodes|html }}</td><td>{{ job.queued|html }}</td><td>{{ job.ran|html }}</td><td>{{ job.state|html }}</td></tr>
    {% endfor %}</table></div>
    {% else %}
    <p>No jobs ledger was available (run through the ci-slurm executor to get one).</p>
    {% endif %}
    {% if pipeline %}<dl>{% for entry in pipeline %}<dt>{{ entry.key|html }}</dt><dd>{{ entry.value|html }}</dd>{% endfor %}</dl>{% endif %}
    </section>
    <footer>Generated {{ generated }} by ci-worker publish.</footer>
    </main>
    </body>
    </html>

    """
}
