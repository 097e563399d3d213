import AtomicFiles
import Foundation
import Workers

/// What visualize leaves for publish in `<figures>/figures.json`: the figures (plotly
/// figure JSON files beside it) with captions, tables of the analysis, and a one-line
/// headline. Any other `*.plotly.json` in that directory is published too (docs/workers.md).
public struct FigureSet: Codable, Equatable, Sendable {
  public struct Figure: Codable, Equatable, Sendable {
    public var file: String
    public var title: String
    public var caption: String

    public init(file: String, title: String, caption: String) {
      (self.file, self.title, self.caption) = (file, title, caption)
    }
  }

  public struct Table: Codable, Equatable, Sendable {
    public var caption: String
    public var columns: [String]
    public var rows: [[String]]

    public init(caption: String, columns: [String], rows: [[String]]) {
      (self.caption, self.columns, self.rows) = (caption, columns, rows)
    }
  }

  public init(headline: String, figures: [Figure], tables: [Table]) {
    (self.headline, self.figures, self.tables) = (headline, figures, tables)
  }

  public var headline: String
  public var figures: [Figure]
  public var tables: [Table]
}

public enum Visualize {
  /// visualize as a task: exactly one of `svd` (reads `<svd>/reduce.json`) or `data`
  /// (every item's summary.json and data.sqlite), skipped when `<out>/figures.json` was
  /// drawn from these very inputs.
  public static func run(svd: String?, data: String?, to directory: String, force: Bool, log: (String) -> Void) throws {
    guard (svd == nil) != (data == nil) else { throw WorkerError("visualize: give exactly one of --svd DIR or --data DIR") }
    var files: [String: String] = [:]
    if let svd { files["reduce.json"] = "\(svd)/reduce.json" }
    if let data {
      for item in items(root: data) {
        files["\(item)/summary.json"] = "\(data)/\(item)/summary.json"
        files["\(item)/data.sqlite"] = ItemAnalysis.database(root: data, item: item)
      }
    }
    let output = "\(directory)/figures.json"
    let recipe = try Recipe.hashing(task: "visualize", files: files)
    if !force, !files.isEmpty, UpToDate.isCurrent(recipe, outputs: [output]) {
      log("up to date: visualize \(output) (from these \(files.count) inputs; --force draws again)")
      return
    }
    UpToDate.forget(output)
    if let svd { _ = try Visualize.svd(reduce: "\(svd)/reduce.json", to: directory, log: log) }
    if let data { _ = try Visualize.data(root: data, to: directory, log: log) }
    try UpToDate.record(recipe, for: output)
  }

  /// The data pipeline's items: the directories of `root` holding a summary.json.
  static func items(root: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).sorted().filter {
      FileManager.default.fileExists(atPath: "\(root)/\($0)/summary.json")
    }
  }

  /// The SVD pipeline's dashboard: one figure, the reduce error against the number of
  /// blocks k (with the single-block mean and the exact answer as references) above the
  /// histogram of |v_alignment|; a slider over k marks the error at k, says it in the
  /// title, and redraws the histogram for the first k seeds (fixed, exact bin edges).
  public static func svd(reduce path: String, to directory: String, log: (String) -> Void) throws -> FigureSet {
    let result = try ItemAnalysis.readJSON(SVDReduce.Result.self, from: path)
    guard !result.vAlignments.isEmpty, !result.errorByBlocks.isEmpty else {
      throw WorkerError("\(path): no per-seed alignments or errors by blocks; rerun svd-reduce with this version")
    }
    let alignments = result.vAlignments.map(abs)
    let (edges, labels) = Plotly.bins(alignments, target: min(40, max(5, Int(Double(alignments.count).squareRoot()))))
    let bins = edges.count - 1
    let width = edges[1] - edges[0]
    func counts(_ values: ArraySlice<Double>) -> [Int] {
      var counts = Array(repeating: 0, count: bins)
      for value in values { counts[min(bins - 1, max(0, Int(floor((value - edges[0]) / width + 1e-9))))] += 1 }
      return counts
    }
    // The last bin holds its upper edge (the highest value), the others do not.
    let ranges = (0..<bins).map { "[\(labels[$0]), \(labels[$0 + 1])\($0 == bins - 1 ? "]" : ")")" }
    let blocks = result.errorByBlocks.map { Double($0.blocks) }
    let errors = result.errorByBlocks.map(\.error)
    var traces: [[String: Any]] = [
      [
        "type": "scatter", "mode": "lines+markers", "name": "reduce over k blocks", "x": blocks, "y": errors,
        "line": ["color": Plotly.palette[0]], "hovertemplate": "k = %{x}: ‖vt − v‖ = %{y:.4g}<extra></extra>",
      ],
      [
        "type": "scatter", "mode": "lines", "name": "mean single block", "x": [blocks.first!, blocks.last!],
        "y": [result.meanSingleBlockError, result.meanSingleBlockError], "line": ["color": Plotly.palette[1], "dash": "dash"],
        "hovertemplate": "mean single-block error %{y:.4g}<extra></extra>",
      ],
    ]
    if let exact = result.exactError {
      traces.append([
        "type": "scatter", "mode": "lines", "name": "exact, all X stacked", "x": [blocks.first!, blocks.last!], "y": [exact, exact],
        "line": ["color": Plotly.palette[2], "dash": "dot"], "hovertemplate": "exact answer %{y:.4g}<extra></extra>",
      ])
    }
    let markerIndex = traces.count
    traces.append([
      "type": "scatter", "mode": "markers", "name": "at the slider's k", "x": [blocks.last!], "y": [errors.last!],
      "marker": ["size": 14, "color": Plotly.palette[3], "symbol": "circle-open", "line": ["width": 3]],
      "hovertemplate": "k = %{x}: ‖vt − v‖ = %{y:.4g}<extra></extra>",
    ])
    let histogramIndex = traces.count
    let centers = (0..<bins).map { edges[$0] + width / 2 }
    traces.append([
      "type": "bar", "name": "seeds per bin", "x": centers, "width": Array(repeating: width, count: bins),
      "y": counts(alignments[...]), "customdata": ranges, "xaxis": "x2", "yaxis": "y2",
      "marker": ["color": Plotly.palette[4]], "hovertemplate": "%{y} seeds with |v_alignment| in %{customdata}<extra></extra>",
    ])
    func readout(_ index: Int) -> String {
      let k = result.errorByBlocks[index]
      return "k = \(k.blocks) blocks<br>reduce error \(number(k.error)), "
        + "\(String(format: "%.1f", result.meanSingleBlockError / max(k.error, 1e-300)))× below one block"
    }
    var layout = Plotly.layout(title: readout(blocks.count - 1), x: "blocks (seeds) stacked, k", y: "‖vt − v‖", height: 820)
    // Ticks at the measured k and at 1-2-5 errors: plotly's own log ticks label 2...9 in
    // small type, unreadable on a phone.
    let references = errors + [result.meanSingleBlockError] + (result.exactError.map { [$0] } ?? [])
    let errorTicks = Plotly.logTicks(low: references.min()!, high: references.max()!)
    layout["xaxis"] = [
      "title": ["text": "blocks (seeds) stacked, k"], "type": blocks.count > 2 ? "log" : "linear", "automargin": true, "anchor": "y",
      "tickvals": blocks, "ticktext": result.errorByBlocks.map { String($0.blocks) },
    ]
    layout["yaxis"] = [
      "title": ["text": "‖vt − v‖"], "type": "log", "domain": [0.58, 1], "automargin": true, "anchor": "x",
      "tickvals": errorTicks, "ticktext": errorTicks.map(number),
    ]
    layout["xaxis2"] = [
      "title": ["text": "|v_alignment| = |⟨v_est, v⟩|"], "automargin": true, "anchor": "y2", "tickangle": 0,
      // Ticks on bin edges, printed exactly; at most five, so they fit side by side at 412 px.
      "tickvals": stride(from: 0, to: edges.count, by: (edges.count + 4) / 5).map { edges[$0] },
      "ticktext": stride(from: 0, to: edges.count, by: (edges.count + 4) / 5).map { labels[$0] },
      "range": [edges.first!, edges.last!],
    ]
    layout["yaxis2"] = ["title": ["text": "seeds"], "domain": [0, 0.4], "automargin": true, "anchor": "x2", "rangemode": "tozero"]
    layout["bargap"] = 0.05
    // Room above the plot for a two-line title and a legend that wraps at 412 px; on the
    // right for half the last bin edge's label (automargin leaves it cut).
    layout["margin"] = ["l": 60, "r": 44, "t": 170, "b": 40]
    layout["sliders"] = [[
      "active": blocks.count - 1, "pad": ["t": 95], "currentvalue": ["prefix": "blocks k = ", "font": ["size": 14]],
      "steps": result.errorByBlocks.indices.map { index -> [String: Any] in
        let k = result.errorByBlocks[index].blocks
        return [
          "label": String(k), "method": "update",
          "args": [
            ["x": [[Double(k)], centers], "y": [[errors[index]], counts(alignments.prefix(k))]],
            ["title.text": readout(index), "yaxis2.title.text": "seeds (first \(k))"],
            [markerIndex, histogramIndex],
          ] as [Any],
        ]
      },
    ]]
    let figure: Plotly.Figure = ["data": traces, "layout": layout]
    try AtomicFiles.write(Plotly.json(figure), to: "\(directory)/svd-dashboard.plotly.json", makeDirectories: true)
    let mean = alignments.reduce(0, +) / Double(alignments.count)
    let figures = [
      FigureSet.Figure(
        file: "svd-dashboard.plotly.json", title: "Reduce error against the number of blocks, and the alignment of each seed",
        caption: "Top: ‖vt − v‖ for the top right singular vector of the first k seeds' estimates stacked (k = \(result.errorByBlocks.map { String($0.blocks) }.joined(separator: ", "))), against the mean single-block error \(number(result.meanSingleBlockError))\(result.exactError.map { " and the exact answer from all X stacked, \(number($0))" } ?? ""). Bottom: |⟨v_est, v⟩| of the first k seeds (\(result.nrow)x\(result.ncol), 1 is perfect; a singular vector's sign is arbitrary, so the absolute value is shown) in \(bins) bins of width \(number(width)) from \(labels.first!) to \(labels.last!); over all \(alignments.count) seeds the mean is \(String(format: "%.6f", mean)), the lowest \(String(format: "%.6f", alignments.min()!)). Move the slider to choose k."),
    ]
    var quantities = [
      ["blocks (seeds)", "\(result.blocks) (\(result.seeds))"],
      ["matrix size", "\(result.nrow) x \(result.ncol)"],
      ["reduce error ‖vt − v‖", number(result.reduceError)],
      ["mean single-block error", number(result.meanSingleBlockError)],
      ["improvement", String(format: "%.1fx", result.meanSingleBlockError / max(result.reduceError, 1e-300))],
    ]
    if let exact = result.exactError { quantities.append(["exact (all X stacked)", number(exact)]) }
    let set = FigureSet(
      headline: "reduce error \(number(result.reduceError)) vs mean single-block error \(number(result.meanSingleBlockError)) over \(result.blocks) blocks",
      figures: figures,
      tables: [
        FigureSet.Table(caption: "The reduce", columns: ["quantity", "value"], rows: quantities),
        FigureSet.Table(
          caption: "Error by number of blocks", columns: ["blocks", "‖vt − v‖"],
          rows: result.errorByBlocks.map { [String($0.blocks), number($0.error)] }),
      ])
    try ItemAnalysis.writeJSON(set, to: "\(directory)/figures.json")
    log("visualize: \(figures.count) figure in \(directory)")
    return set
  }

  /// The data pipeline's dashboard: every item on one plot against the first numeric
  /// column (time), a dropdown choosing the signal (every other numeric column), the
  /// phases other than the first (the task) shaded, per-phase mean ± sd below, and a
  /// slider choosing the time window. Tables: every item's gathered column statistics and
  /// the per-phase ones.
  public static func data(root: String, to directory: String, log: (String) -> Void) throws -> FigureSet {
    let items = items(root: root)
    guard !items.isEmpty else { throw WorkerError("visualize: no item in \(root) has a summary.json (did gather run?)") }
    var rows: [[String]] = []
    var phaseRows: [[String]] = []
    var totalRows = 0
    var tables: [(item: String, table: ItemAnalysis.Table)] = []
    for item in items {
      let summary = try ItemAnalysis.readJSON(ItemSummary.self, from: "\(root)/\(item)/summary.json")
      totalRows += summary.rows
      for column in summary.columns {
        rows.append([item, Labels.column(column.name), String(column.count), number(column.mean), number(column.std), number(column.min), number(column.max)])
      }
      let table = try ItemAnalysis.table(root: root, item: item, summary: summary)
      guard table.columns.count > 1 else {
        throw WorkerError("visualize: \(item) has \(table.columns.count) numeric column; a signal needs a time (or index) column and a value column")
      }
      tables.append((item, table))
    }
    let xName = tables[0].table.columns[0]
    // Signals in the first item's order, then any only later items have.
    var signals: [String] = []
    for (_, table) in tables { for name in table.columns.dropFirst() where !signals.contains(name) && name != xName { signals.append(name) } }
    let phases = tables.flatMap { $0.table.phaseStatistics.map(\.phase) }.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
    for (item, table) in tables {
      for signal in signals {
        for entry in table.phaseStatistics {
          guard let statistics = entry.columns[signal] else { continue }
          phaseRows.append([item, Labels.column(signal), entry.phase, String(statistics.count), number(statistics.mean), number(statistics.standardDeviation)])
        }
      }
    }
    func series(_ table: ItemAnalysis.Table, _ name: String) -> [Any] {
      guard let index = table.columns.firstIndex(of: name) else { return Array(repeating: NSNull(), count: table.values[0].count) }
      return table.values[index].map { $0.map { $0 as Any } ?? NSNull() }
    }
    // Per signal, the y of every trace: the items' lines, then the items' phase dots.
    func traceData(_ signal: String) -> (y: [[Any]], spread: [[Any]]) {
      var ys: [[Any]] = tables.map { series($0.table, signal) }
      var spreads: [[Any]] = tables.map { _ in [] }
      for (_, table) in tables {
        let statistics = phases.map { phase in table.phaseStatistics.first { $0.phase == phase }?.columns[signal] }
        ys.append(statistics.map { $0.map { $0.mean as Any } ?? NSNull() })
        spreads.append(statistics.map { $0.map { $0.standardDeviation as Any } ?? NSNull() })
      }
      return (ys, spreads)
    }
    func title(_ signal: String) -> String {
      let differences: [String] = tables.compactMap { item, table in
        guard phases.count > 1, let first = table.phaseStatistics.first?.columns[signal], let second = table.phaseStatistics.dropFirst().first?.columns[signal] else {
          return nil
        }
        return "\(item) \(String(format: "%+.3g", second.mean - first.mean))"
      }
      let change = differences.isEmpty ? "" : "<br>\(phases[1]) − \(phases[0]): \(differences.joined(separator: ", "))"
      return "\(Labels.column(signal).prefix(1).uppercased())\(Labels.column(signal).dropFirst())\(change)"
    }
    let first = traceData(signals[0])
    var traces: [[String: Any]] = []
    for (index, (item, table)) in tables.enumerated() {
      traces.append([
        "type": "scatter", "mode": "lines", "name": item, "legendgroup": item, "x": series(table, xName), "y": first.y[index],
        "line": ["color": Plotly.palette[index % Plotly.palette.count], "width": 1.5],
        "hovertemplate": "\(item): %{y:.4g} at \(Labels.column(xName)) %{x}<extra></extra>",
      ])
    }
    for (index, (item, _)) in tables.enumerated() {
      traces.append([
        // Dots with error bars, not bars from zero: 32.99 against 32.68 °C must show.
        // Phase p at x = p, each item a little to the side of it (a numeric axis labelled
        // with the phases: plotly's scattermode "group" would pull the axes to zero).
        "type": "scatter", "mode": "markers", "name": "\(item) per phase", "legendgroup": item, "showlegend": false,
        "x": phases.indices.map { Double($0) + (Double(index) - Double(tables.count - 1) / 2) * 0.12 }, "customdata": phases,
        "y": first.y[tables.count + index], "error_y": ["type": "data", "array": first.spread[tables.count + index], "visible": true],
        "xaxis": "x2", "yaxis": "y2", "marker": ["color": Plotly.palette[index % Plotly.palette.count], "size": 10],
        "hovertemplate": "\(item), %{customdata}: mean %{y:.4g} ± %{error_y.array:.3g} (sd)<extra></extra>",
      ])
    }
    // The shaded windows: runs of sampled rows in a phase other than the first (the
    // baseline), from the first item (the items share a protocol).
    var shapes: [[String: Any]] = []
    var annotations: [[String: Any]] = []
    let reference = tables[0].table
    if reference.phaseColumn != nil, let baseline = reference.phases.first, let xs = reference.values.first {
      var start: Int? = nil
      for index in 0...reference.phases.count {
        let inside = index < reference.phases.count && reference.phases[index] != baseline
        if inside, start == nil { start = index }
        if !inside, let from = start, let x0 = xs[from], let x1 = xs[index - 1] {
          shapes.append([
            "type": "rect", "xref": "x", "yref": "y domain", "x0": x0, "x1": x1, "y0": 0, "y1": 1, "layer": "below",
            "fillcolor": "rgba(255, 127, 14, 0.15)", "line": ["width": 0],
          ])
          annotations.append([
            "text": reference.phases[from], "xref": "x", "yref": "y domain", "x": (x0 + x1) / 2, "y": 1, "yanchor": "bottom",
            "showarrow": false, "font": ["color": "#a0522d"],
          ])
          start = nil
        }
      }
    }
    let xs = tables.flatMap { $0.table.values[0].compactMap { $0 } }
    let (xLow, xHigh) = (xs.min() ?? 0, xs.max() ?? 1)
    // About five windows of a round width (60 s, not 59.96 s).
    let raw = max((xHigh - xLow) / 5, 1e-9)
    let magnitude = pow(10, floor(log10(raw)) - 1)
    let span = (raw / magnitude).rounded() * magnitude
    let windows = max(1, Int(ceil((xHigh - xLow) / span - 1e-9)))
    var layout = Plotly.layout(title: title(signals[0]), x: Labels.column(xName), y: Labels.column(signals[0]), height: 760)
    layout["yaxis"] = ["title": ["text": Labels.column(signals[0])], "domain": [0.42, 1], "automargin": true, "anchor": "x"]
    layout["xaxis"] = ["title": ["text": Labels.column(xName)], "automargin": true, "anchor": "y"]
    layout["xaxis2"] = [
      "title": ["text": reference.phaseColumn.map(Labels.column) ?? "phase"], "automargin": true, "anchor": "y2", "tickvals": phases.indices.map(Double.init),
      "ticktext": phases, "range": [-0.5, Double(phases.count) - 0.5], "showgrid": false, "zeroline": false,
    ]
    layout["yaxis2"] = ["title": ["text": "mean ± sd"], "domain": [0, 0.26], "automargin": true, "anchor": "x2"]
    layout["shapes"] = shapes
    layout["annotations"] = annotations
    // From the top: the two-line title, the signal menu, the legend (a row of its own:
    // beside the menu it would not fit at 412 px), then the plot. Paper y counts in the
    // 545 px between the margins: the menu's top 58 px from the figure's, the legend's 96.
    layout["margin"] = ["l": 60, "r": 16, "t": 175, "b": 40]
    layout["updatemenus"] = [[
      "type": "dropdown", "x": 0, "xanchor": "left", "y": 1.2147, "yanchor": "top", "showactive": true, "active": 0,
      "buttons": signals.map { signal -> [String: Any] in
        let data = traceData(signal)
        return [
          "label": Labels.column(signal), "method": "update",
          "args": [
            // Lines get no error bars (their spread arrays are empty), the phase dots do.
            ["y": data.y, "error_y": data.spread.map { ["type": "data", "array": $0, "visible": !$0.isEmpty] as [String: Any] }],
            ["title.text": title(signal), "yaxis.title.text": Labels.column(signal), "yaxis.autorange": true, "yaxis2.autorange": true],
          ] as [Any],
        ]
      },
    ]]
    layout["legend"] = ["orientation": "h", "x": 0, "xanchor": "left", "y": 1.145, "yanchor": "top"]
    layout["sliders"] = [[
      // Narrower than the plot, so the last window's label is not cut at the figure's edge.
      "active": 0, "pad": ["t": 60], "x": 0.02, "len": 0.9, "currentvalue": ["prefix": "\(Labels.column(xName)) window: ", "font": ["size": 14]],
      "steps": [["label": "all", "method": "relayout", "args": [["xaxis.autorange": true]]] as [String: Any]]
        + (0..<windows).map { index -> [String: Any] in
          let (from, to) = (xLow + Double(index) * span, xLow + Double(index + 1) * span)
          return ["label": "\(number(from))–\(number(to))", "method": "relayout", "args": [["xaxis.range": [from, to]]]]
        },
    ]]
    let figure: Plotly.Figure = ["data": traces, "layout": layout]
    try AtomicFiles.write(Plotly.json(figure), to: "\(directory)/signals.plotly.json", makeDirectories: true)
    let step = tables.map(\.table.step).max() ?? 1
    let figures = [
      FigureSet.Figure(
        file: "signals.plotly.json", title: "Every item's signals over \(Labels.column(xName))",
        caption: "\(items.joined(separator: ", ")) on one plot (\(totalRows) rows\(step > 1 ? ", one in \(step) drawn" : "")); choose the signal (\(signals.map(Labels.column).joined(separator: ", "))) in the menu\(shapes.isEmpty ? "" : ", the shaded span is the \(phases.dropFirst().joined(separator: "/")) phase")\(phases.isEmpty ? "" : "; below, each phase's mean ± sd over all rows"). The slider picks a window of \(Labels.column(xName)); drag on the plot to zoom, double-click to reset."),
    ]
    var setTables = [
      FigureSet.Table(caption: "Column statistics per item (gathered over the analyze shards)", columns: ["item", "column", "n", "mean", "sd", "min", "max"], rows: rows)
    ]
    if !phaseRows.isEmpty {
      setTables.append(FigureSet.Table(
        caption: "Per phase (\(reference.phaseColumn.map(Labels.column) ?? "phase")) over all rows", columns: ["item", "signal", "phase", "n", "mean", "sd"],
        rows: phaseRows))
    }
    let set = FigureSet(headline: "\(items.count) items, \(totalRows) rows analyzed", figures: figures, tables: setTables)
    try ItemAnalysis.writeJSON(set, to: "\(directory)/figures.json")
    log("visualize: \(figures.count) figure (\(signals.count) signals, \(items.count) items) in \(directory)")
    return set
  }
}
