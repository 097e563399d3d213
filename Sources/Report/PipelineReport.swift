public import CustomExecutorAPI
public import Foundation
import Workers
import Yams

/// The pipeline section of the report: the DAG of CI jobs (inline SVG, drawn here: no
/// mermaid or graphviz to fetch) and a timeline of every Slurm job or array task.
public enum PipelineReport {
  /// What the pipeline file says: the stage order and each job's `needs` (nil: the job
  /// has none, so GitLab runs it after the previous stage).
  public struct Structure: Equatable, Sendable {
    public var stages: [String]
    public var needs: [String: [String]]

    public init(stages: [String], needs: [String: [String]]) { (self.stages, self.needs) = (stages, needs) }
  }

  /// Reads a `.gitlab-ci.yml`'s `stages` and `needs` (names or `{job: name}`).
  public static func structure(gitlabCI path: String) throws -> Structure {
    guard let data = FileManager.default.contents(atPath: path) else { throw WorkerError("publish: cannot read the pipeline file \(path)") }
    let document: Any?
    do {
      document = try Yams.load(yaml: String(decoding: data, as: UTF8.self))
    } catch {
      throw WorkerError("publish: \(path) is not YAML (\(String(describing: error).split(separator: "\n").first ?? ""))")
    }
    guard let top = document as? [String: Any] else { throw WorkerError("publish: \(path) is not a GitLab CI file (no mapping at the top)") }
    var needs: [String: [String]] = [:]
    for (name, value) in top {
      guard let job = value as? [String: Any], let list = job["needs"] as? [Any] else { continue }
      needs[name] = list.compactMap { ($0 as? String) ?? (($0 as? [String: Any])?["job"] as? String) }
    }
    return Structure(stages: (top["stages"] as? [Any])?.compactMap { $0 as? String } ?? [], needs: needs)
  }

  /// The DAG as SVG, top to bottom, one row per stage (a phone shows a row of two jobs
  /// at full size); an edge per `needs`, or from every job of the previous stage.
  public static func dag(jobs: [CIJobRow], structure: Structure?) -> String {
    var names: [String] = []
    var rows: [String: CIJobRow] = [:]
    for job in jobs where rows[job.name] == nil {
      names.append(job.name)
      rows[job.name] = job
    }
    var stages = (structure?.stages ?? []).filter { stage in names.contains { rows[$0]!.stage == stage } }
    for name in names where !stages.contains(rows[name]!.stage) { stages.append(rows[name]!.stage) }
    var layers = stages.map { stage in names.filter { rows[$0]!.stage == stage } }
    func parents(_ name: String, row: Int) -> [String] { structure?.needs[name] ?? (row > 0 ? layers[row - 1] : []) }
    // The first row by name (sub-01 before sub-02, whichever was submitted first), then
    // each row in the order of its parents' places above (one barycentre pass), so two
    // items' chains run side by side instead of crossing.
    if !layers.isEmpty { layers[0].sort() }
    for row in layers.indices.dropFirst() {
      let above = Dictionary(uniqueKeysWithValues: layers[row - 1].enumerated().map { ($1, Double($0)) })
      func place(_ name: String) -> Double {
        let known = parents(name, row: row).compactMap { above[$0] }
        return known.isEmpty ? .infinity : known.reduce(0, +) / Double(known.count)
      }
      layers[row] = layers[row].enumerated().sorted { (place($0.element), $0.offset) < (place($1.element), $1.offset) }.map(\.element)
    }
    let (boxWidth, boxHeight, columnGap, rowGap, margin) = (190.0, 40.0, 16.0, 34.0, 8.0)
    let columns = Double(layers.map(\.count).max() ?? 1)
    let width = margin * 2 + columns * boxWidth + (columns - 1) * columnGap
    let height = margin * 2 + Double(layers.count) * boxHeight + Double(max(0, layers.count - 1)) * rowGap
    var position: [String: (x: Double, y: Double)] = [:]
    for (row, layer) in layers.enumerated() {
      let used = Double(layer.count) * boxWidth + Double(layer.count - 1) * columnGap
      for (column, name) in layer.enumerated() {
        position[name] = (margin + (width - 2 * margin - used) / 2 + Double(column) * (boxWidth + columnGap), margin + Double(row) * (boxHeight + rowGap))
      }
    }
    var edges: [(String, String)] = []
    for (row, layer) in layers.enumerated() {
      for name in layer {
        edges += parents(name, row: row).filter { position[$0] != nil }.map { ($0, name) }
      }
    }
    func f(_ value: Double) -> String { String(format: "%.1f", value) }
    var svg = """
      <svg xmlns="http://www.w3.org/2000/svg" class="dag" viewBox="0 0 \(f(width)) \(f(height))" width="\(f(width))" height="\(f(height))" role="img" aria-label="The pipeline's CI jobs and what each needs">
      <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#777"/></marker></defs>

      """
    for (from, to) in edges {
      let (a, b) = (position[from]!, position[to]!)
      let (x1, y1, x2, y2) = (a.x + boxWidth / 2, a.y + boxHeight, b.x + boxWidth / 2, b.y)
      let middle = (y1 + y2) / 2
      svg += "<path class=\"edge\" d=\"M\(f(x1)),\(f(y1)) C\(f(x1)),\(f(middle)) \(f(x2)),\(f(middle)) \(f(x2)),\(f(y2 - 1))\" fill=\"none\" stroke=\"#777\" stroke-width=\"1.5\" marker-end=\"url(#arrow)\"/>\n"
    }
    for name in names {
      let (job, at) = (rows[name]!, position[name]!)
      let (fill, stroke) = colors(job.state)
      let detail = "\(job.scheduler) \(job.schedulerJob), \(job.state)\(job.ran.isEmpty ? "" : ", ran \(job.ran)")"
      svg += """
        <g class="job"><title>\(escape(name)): \(escape(detail))</title><rect x="\(f(at.x))" y="\(f(at.y))" width="\(f(boxWidth))" height="\(f(boxHeight))" rx="6" fill="\(fill)" stroke="\(stroke)" stroke-width="1.5"/>\
        <text x="\(f(at.x + boxWidth / 2))" y="\(f(at.y + 17))" text-anchor="middle" font-size="14" font-weight="600">\(escape(name))</text>\
        <text x="\(f(at.x + boxWidth / 2))" y="\(f(at.y + 33))" text-anchor="middle" font-size="12" fill="#333">\(escape(job.state))</text></g>

        """
    }
    return svg + "</svg>"
  }

  static func colors(_ state: String) -> (String, String) {
    if state.contains("fail") || state.contains("cancel") || state.contains("timeout") { return ("#fde0dc", "#c62828") }
    if state == "this job" || state == "running" { return ("#e3f0fb", "#1f77b4") }
    return ("#e6f4ea", "#2e7d32")
  }

  /// The timeline: per Slurm job or array task a grey bar for the queue wait (submit to
  /// start) and a coloured one for the run (start to end, or to now for the report's own
  /// job); without accounting (the local backend) the ledger's submit-to-end.
  public static func timeline(ledger: [LedgerRecord], accounting: [String: AccountingRow], now: Date = Date()) -> Plotly.Figure? {
    struct Bar {
      var label: String
      var submit: Date
      var start: Date
      var end: Date
      var state: String
    }
    var bars: [Bar] = []
    var ended: [String: LedgerRecord] = [:]
    for record in ledger where record.event == "ended" { ended[record.schedulerJobID] = record }
    for record in ledger where record.event == "submitted" {
      let submitted = Date(timeIntervalSince1970: record.time)
      if let account = accounting[record.schedulerJobID], !account.tasks.isEmpty {
        for task in account.tasks {
          let submit = task.submit ?? submitted
          let start = task.start ?? now
          bars.append(Bar(label: "\(record.ciJobName) · \(task.id)", submit: submit, start: start, end: task.end ?? now, state: task.state.lowercased()))
        }
      } else {
        let end = ended[record.schedulerJobID].map { Date(timeIntervalSince1970: $0.time) } ?? now
        bars.append(Bar(
          label: "\(record.ciJobName) · \(record.schedulerJobID)", submit: submitted, start: submitted, end: end,
          state: ended[record.schedulerJobID]?.result ?? "running"))
      }
    }
    guard let origin = bars.map(\.submit).min() else { return nil }
    let labels = bars.map(\.label)
    func seconds(_ date: Date) -> Double { (date.timeIntervalSince(origin) * 10).rounded() / 10 }
    let queue: [String: Any] = [
      "type": "bar", "orientation": "h", "name": "queue wait", "y": labels, "base": bars.map { seconds($0.submit) },
      "x": bars.map { seconds($0.start) - seconds($0.submit) }, "marker": ["color": "#bdbdbd"],
      "hovertemplate": "%{y}: waited %{x:.1f} s in the queue<extra></extra>",
    ]
    let run: [String: Any] = [
      "type": "bar", "orientation": "h", "name": "running", "y": labels, "base": bars.map { seconds($0.start) },
      "x": bars.map { max(seconds($0.end) - seconds($0.start), 0.1) }, "customdata": bars.map(\.state),
      "marker": ["color": bars.map { colors($0.state).1 }],
      "hovertemplate": "%{y}: ran %{x:.1f} s from %{base:.1f} s (%{customdata})<extra></extra>",
    ]
    var layout = Plotly.layout(
      title: "Slurm jobs and array tasks over time", x: "time (s)", y: "", height: 140 + 26 * bars.count)
    layout["barmode"] = "overlay"
    layout["yaxis"] = ["autorange": "reversed", "automargin": true, "type": "category"]
    return ["data": [queue, run], "layout": layout]
  }
}
