import Foundation
import Workers

/// What visualize leaves for publish in `<figures>/figures.json`: the figures (SVG files
/// beside it) with captions, tables of the analysis, and a one-line headline.
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
  /// The SVD pipeline: the distribution of |v_alignment| over seeds, and the reduce error
  /// against the number of blocks stacked, with the single-block mean (and the exact
  /// answer, when reduced with --exact) as references.
  public static func svd(reduce path: String, to directory: String, log: (String) -> Void) throws -> FigureSet {
    let result = try ItemAnalysis.readJSON(SVDReduce.Result.self, from: path)
    guard !result.vAlignments.isEmpty, !result.errorByBlocks.isEmpty else {
      throw WorkerError("\(path): no per-seed alignments or errors by blocks; rerun svd-reduce with this version")
    }
    let alignments = result.vAlignments.map(abs)
    let bins = min(40, max(5, Int(Double(alignments.count).squareRoot())))
    let histogram = SVGChart(
      title: "Alignment of each seed's estimate with v", xLabel: "|v_alignment| = |⟨v_est, v⟩|", yLabel: "seeds"
    ).histogram(alignments, bins: bins)
    var series = [
      SVGChart.Series(name: "reduce over k blocks", points: result.errorByBlocks.map { (Double($0.blocks), $0.error) }, color: SVGChart.palette[0]),
      SVGChart.Series(
        name: "mean single block", points: result.errorByBlocks.map { (Double($0.blocks), result.meanSingleBlockError) },
        color: SVGChart.palette[1], dashed: true),
    ]
    if let exact = result.exactError {
      series.append(SVGChart.Series(
        name: "exact, all X stacked", points: result.errorByBlocks.map { (Double($0.blocks), exact) }, color: SVGChart.palette[2], dashed: true))
    }
    let errors = SVGChart(
      title: "Reduce error against the number of blocks", xLabel: "blocks (seeds) stacked", yLabel: "‖vt − v‖",
      logX: result.errorByBlocks.count > 2, logY: true
    ).lines(series)
    let mean = alignments.reduce(0, +) / Double(alignments.count)
    let figures = [
      FigureSet.Figure(
        file: "v-alignment.svg", title: "Distribution of v_alignment",
        caption: "|⟨v_est, v⟩| for each of the \(alignments.count) seeds (\(result.nrow)x\(result.ncol), 1 is perfect; a singular vector's sign is arbitrary, so the absolute value is shown). Mean \(String(format: "%.6f", mean)), lowest \(String(format: "%.6f", alignments.min()!)), \(bins) bins."),
      FigureSet.Figure(
        file: "reduce-error.svg", title: "Reduce error against the number of blocks",
        caption: "‖vt − v‖ for the top right singular vector of the first k seeds' estimates stacked (k = \(result.errorByBlocks.map { String($0.blocks) }.joined(separator: ", "))), against the mean single-block error \(number(result.meanSingleBlockError))\(result.exactError.map { " and the exact answer from all X stacked, \(number($0))" } ?? "")."),
    ]
    try AtomicFile.write(histogram, to: "\(directory)/v-alignment.svg")
    try AtomicFile.write(errors, to: "\(directory)/reduce-error.svg")
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
    log("visualize: \(figures.count) figures in \(directory)")
    return set
  }

  /// The data pipeline: one figure per base item (every item directory with a
  /// summary.json): its second numeric column against its first, with the gathered
  /// mean ± 1 sd as a band; and a table of every item's column statistics.
  public static func data(root: String, to directory: String, log: (String) -> Void) throws -> FigureSet {
    let items = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).sorted().filter {
      FileManager.default.fileExists(atPath: "\(root)/\($0)/summary.json")
    }
    guard !items.isEmpty else { throw WorkerError("visualize: no item in \(root) has a summary.json (did gather run?)") }
    var figures: [FigureSet.Figure] = []
    var rows: [[String]] = []
    var totalRows = 0
    for (index, item) in items.enumerated() {
      let summary = try ItemAnalysis.readJSON(ItemSummary.self, from: "\(root)/\(item)/summary.json")
      totalRows += summary.rows
      for column in summary.columns {
        rows.append([item, column.name, String(column.count), number(column.mean), number(column.std), number(column.min), number(column.max)])
      }
      guard let yColumn = summary.columns.count > 1 ? summary.columns[1] : summary.columns.first else {
        throw WorkerError("visualize: \(item) has no numeric column to draw")
      }
      let xColumn = summary.columns.count > 1 ? summary.columns[0].name : nil
      let (points, step) = try ItemAnalysis.samples(root: root, item: item, x: xColumn, y: yColumn.name)
      let svg = SVGChart(title: "\(item): \(yColumn.name)", xLabel: xColumn ?? "row", yLabel: yColumn.name).lines(
        [SVGChart.Series(name: yColumn.name, points: points, color: SVGChart.palette[index % SVGChart.palette.count])],
        band: (yColumn.mean - yColumn.std, yColumn.mean + yColumn.std, "mean ± 1 sd"))
      let file = "\(item).svg"
      try AtomicFile.write(svg, to: "\(directory)/\(file)")
      figures.append(FigureSet.Figure(
        file: file, title: "\(item): \(yColumn.name) against \(xColumn ?? "row")",
        caption: "\(item): \(yColumn.name) over \(summary.rows) rows\(step > 1 ? " (every \(step)th drawn)" : ""); the band is the mean ± 1 sd, \(number(yColumn.mean)) ± \(number(yColumn.std)), gathered from \(summary.shards) analyze shards."))
    }
    let set = FigureSet(
      headline: "\(items.count) items, \(totalRows) rows analyzed",
      figures: figures,
      tables: [FigureSet.Table(caption: "Column statistics per item (gathered over the analyze shards)", columns: ["item", "column", "n", "mean", "sd", "min", "max"], rows: rows)])
    try ItemAnalysis.writeJSON(set, to: "\(directory)/figures.json")
    log("visualize: \(figures.count) figures (one per item) in \(directory)")
    return set
  }

}
