import Foundation
import Report
import Testing
import Workers

@Suite struct AnalysisTests {
  /// A converted item: the CSV through convert, as the pipeline does it.
  func item(_ rows: [(Double, Double, String)]) throws -> String {
    let root = try scratch()
    let csv = "\(root)/in.csv"
    var text = "t,value,label\n"
    for row in rows { text += "\(row.0),\(row.1),\(row.2)\n" }
    try text.write(toFile: csv, atomically: true, encoding: .utf8)
    _ = try Converter(input: csv, item: "sub-01", outputRoot: root, log: { _ in }).run()
    return root
  }

  @Test func shardsGatherToTheStatisticsOfOnePass() throws {
    var values: [(Double, Double, String)] = []
    for index in 0..<1001 {
      let t = Double(index) / 10
      let value: Double = sin(Double(index)) * 7 + 50
      values.append((t, value, index % 2 == 0 ? "a" : "b"))
    }
    let root = try item(values)
    for shard in 0..<3 { try ItemAnalysis.analyze(root: root, item: "sub-01", shard: shard, shards: 3, log: { _ in }) }
    let summary = try ItemAnalysis.gather(root: root, item: "sub-01", log: { _ in })
    #expect(summary.rows == 1001)
    #expect(summary.columns.map(\.name) == ["t", "value"])  // the text column is not numeric
    let ys: [Double] = values.map { $0.1 }
    let mean: Double = ys.reduce(0, +) / Double(ys.count)
    var squares = 0.0
    for y in ys { squares += (y - mean) * (y - mean) }
    let sd: Double = (squares / Double(ys.count - 1)).squareRoot()
    #expect(abs(summary.columns[1].mean - mean) < 1e-12)
    #expect(abs(summary.columns[1].std - sd) < 1e-12)
    #expect(summary.columns[1].min == ys.min())
    #expect(summary.columns[0].max == 100)
  }

  @Test func aShardWithNoRowsIsWrittenAndGathered() throws {
    // 2 rows in 3 shards: one shard has none (its min and max were infinities JSON cannot
    // hold: EncodingError.invalidValue).
    let root = try item([(1, 2, "x"), (2, 3, "y")])
    for shard in 0..<3 { try ItemAnalysis.analyze(root: root, item: "sub-01", shard: shard, shards: 3, log: { _ in }) }
    let summary = try ItemAnalysis.gather(root: root, item: "sub-01", log: { _ in })
    #expect(summary.rows == 2)
    #expect(summary.columns.map(\.min) == [1, 2])
    #expect(summary.columns.map(\.max) == [2, 3])
  }

  @Test func foundationErrorsBecomeOneLineWithThePathAndTheReason() throws {
    // Was: Error Domain=NSCocoaErrorDomain Code=512 "(null)"UserInfo={NSFilePath=..., ...}
    let file = try scratch() + "/plain-file"
    try "x".write(toFile: file, atomically: true, encoding: .utf8)
    #expect {
      try FileManager.default.createDirectory(atPath: "\(file)/out", withIntermediateDirectories: true)
    } throws: { error in
      WorkerError.oneLine(error) == "\(file)/out: Not a directory"
    }
  }

  @Test func aMissingShardIsNamedAndBadShardsAreRefused() throws {
    let root = try item([(1, 2, "x"), (2, 3, "y"), (3, 4, "z")])
    try ItemAnalysis.analyze(root: root, item: "sub-01", shard: 0, shards: 3, log: { _ in })
    try ItemAnalysis.analyze(root: root, item: "sub-01", shard: 2, shards: 3, log: { _ in })
    #expect { try ItemAnalysis.gather(root: root, item: "sub-01", log: { _ in }) } throws: {
      "\($0)".contains("shard(s) 1 of 3 missing")
    }
    #expect { try ItemAnalysis.analyze(root: root, item: "sub-01", shard: 3, shards: 3, log: { _ in }) } throws: {
      "\($0)".contains("out of range")
    }
    #expect { try ItemAnalysis.analyze(root: root, item: "sub-02", shard: 0, shards: 1, log: { _ in }) } throws: {
      "\($0)".contains("run convert for this item first")
    }
    try "{not json".write(toFile: "\(root)/sub-01/analysis/shard-1-of-3.json", atomically: true, encoding: .utf8)
    #expect { try ItemAnalysis.gather(root: root, item: "sub-01", log: { _ in }) } throws: {
      "\($0)".contains("shard-1-of-3.json") && "\($0)".contains("rerun that array task")
    }
  }
}

@Suite struct ReportTests {
  // Recorded from `sacct -X -n -P -j 1020,1031 -o JobID,NodeList,Submit,Start,End,State` on
  // the local cluster, with a stale record of a reused id and a running job added.
  let sacct = """
    1020_0|vm|2026-11-23T11:17:12|2026-11-23T11:17:15|2026-11-23T11:17:15|COMPLETED
    1020_1|vm|2026-11-23T11:17:12|2026-11-23T11:17:15|2026-11-23T11:17:21|COMPLETED
    1020_2|vm2|2026-11-23T11:17:12|2026-11-23T11:17:18|2026-11-23T11:17:18|FAILED
    1031|None assigned|2026-11-20T09:00:00|Unknown|Unknown|PENDING
    1031|vm|2026-11-23T11:17:24|2026-11-23T11:17:26|2026-11-23T11:17:27|COMPLETED
    1040|vm|2026-11-23T11:18:00|2026-11-23T11:18:05|Unknown|RUNNING
    1050|None assigned|2026-11-23T11:19:00|Unknown|Unknown|CANCELLED by 0

    """

  @Test func sacctIsFoldedPerJobWithTheLatestRecordOfAReusedID() {
    let rows = JobTable.parseSacct(sacct, timeZone: TimeZone(identifier: "UTC")!)
    let array = rows["1020"]!
    #expect(array.tasks == 3)
    #expect(array.nodes == ["vm", "vm2"])
    #expect(array.states == ["COMPLETED", "FAILED"])
    #expect(array.end!.timeIntervalSince(array.start!) == 6)
    #expect(rows["1031"]!.states == ["COMPLETED"])
    #expect(rows["1031"]!.start!.timeIntervalSince(rows["1031"]!.submit!) == 2)
    #expect(rows["1040"]!.end == nil)
    #expect(rows["1050"]!.states == ["CANCELLED"])
    #expect(rows["1050"]!.nodes.isEmpty)
  }

  @Test func theLedgerBecomesOneRowPerSchedulerJob() {
    func record(_ event: String, _ name: String, _ id: String, _ time: Double, _ result: String? = nil, scheduler: String = "Slurm") -> LedgerRecord {
      LedgerRecord(event: event, ciJobID: "7", ciJobName: name, ciJobStage: "s", scheduler: scheduler, schedulerJobID: id, host: "h", time: time, result: result)
    }
    let ledger = [
      record("submitted", "analyze", "1020", 0), record("ended", "analyze", "1020", 10, "failed"),
      record("submitted", "publish", "1040", 20),
      record("submitted", "local one", "4242", 100, scheduler: "local"), record("ended", "local one", "4242", 175, "succeeded"),
    ]
    let accounting = JobTable.parseSacct(sacct, timeZone: TimeZone(identifier: "UTC")!)
    let now = accounting["1040"]!.start!.addingTimeInterval(30)
    let rows = JobTable.rows(ledger: ledger, accounting: accounting, now: now)
    #expect(rows.map(\.name) == ["analyze", "publish", "local one"])
    #expect(rows[0].schedulerJob == "1020 (3 tasks)")
    #expect(rows[0].state == "completed, failed")
    #expect(rows[0].queued == "3 s")
    #expect(rows[1].state == "running")  // no "ended" record: the report's own job
    #expect(rows[1].ran == "30 s")
    #expect(rows[2].ran == "1 min 15 s")
    #expect(rows[2].nodes == "h")
  }

  @Test func chartsAreSelfContainedSVGAndTextIsEscaped() {
    let chart = SVGChart(title: "a <b> & \"c\"", xLabel: "x", yLabel: "y", logY: true)
    let svg = chart.lines([
      SVGChart.Series(name: "one", points: [(1, 0.1), (2, 0.05), (5, 0.02)], color: "#000"),
      SVGChart.Series(name: "two", points: [(1, 0.03), (5, 0.03)], color: "#f00", dashed: true),
    ])
    #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
    #expect(svg.contains("a &lt;b&gt; &amp; &quot;c&quot;"))
    #expect(!svg.contains("<b>"))
    #expect(svg.components(separatedBy: "<polyline").count - 1 == 2)
    #expect(!svg.contains("http://") || svg.components(separatedBy: "http://").count == 2)  // only the xmlns
    let histogram = SVGChart(title: "h", xLabel: "x", yLabel: "n").histogram([0.99994, 0.99995, 0.99995, 0.99996], bins: 3)
    #expect(histogram.components(separatedBy: "class=\"bar\"").count - 1 == 3)
    // Tick labels keep values a few 1e-5 apart distinct.
    #expect(histogram.contains(">0.99995<") || histogram.contains(">0.999950<"))
  }

  @Test func publishRendersTheTemplateWithFiguresInlineAndEscapesText() throws {
    let directory = try scratch()
    let svg = SVGChart(title: "t", xLabel: "x", yLabel: "y").histogram([1, 2, 3], bins: 3)
    try svg.write(toFile: "\(directory)/f.svg", atomically: true, encoding: .utf8)
    let set = FigureSet(
      headline: "h1", figures: [.init(file: "f.svg", title: "A figure", caption: "x < y")],
      tables: [.init(caption: "T", columns: ["k", "v"], rows: [["a", "<script>"]])])
    let jobs = [CIJobRow(name: "map", stage: "map", scheduler: "Slurm", schedulerJob: "12", nodes: "n1", queued: "1 s", ran: "2 s", state: "completed")]
    let html = try Publisher(
      title: "Report <1>", description: "d", source: "s", figures: set, figureDirectory: directory, jobs: jobs, pipeline: ["pipeline_id": "5"]
    ).render()
    #expect(html.contains("<title>Report &lt;1&gt;</title>"))
    #expect(html.contains(svg))
    #expect(html.contains("&lt;script&gt;"))
    #expect(!html.contains("<script"))
    #expect(html.contains("<td>Slurm 12</td><td>n1</td>"))
    #expect(html.contains("x &lt; y"))
    #expect(throws: WorkerError.self) {
      try Publisher(title: "t", description: "", source: "", figures: set, figureDirectory: directory + "/none", jobs: [], pipeline: [:]).render()
    }
    #expect(throws: WorkerError.self) {
      try Publisher(title: "t", description: "", source: "", figures: set, figureDirectory: directory, jobs: [], pipeline: [:], template: "{% for x in %}").render()
    }
    // Stencil renders an unclosed tag as the text before it (a 4-byte page), silently.
    #expect(throws: WorkerError("publish: the template's {{ on line 2 is not closed with }}")) {
      try Publisher(title: "t", description: "", source: "", figures: set, figureDirectory: directory, jobs: [], pipeline: [:], template: "<h1>\n{{ title }</h1>").render()
    }
  }
}
