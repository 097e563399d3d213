import CustomExecutorAPI
import Foundation
import Report
import TestSizes
import Testing
import Workers

@Suite(.tags(.medium)) struct AnalysisTests {
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

  @Test func perPhaseStatisticsGatheredFromShardsAreThoseOfEachPhasesRows() throws {
    // Phases in runs that cross the shards' boundaries (rest, task, rest, recovery), so a
    // shard sees a phase another shard also sees, and one phase first appears in the last.
    var values: [(Double, Double, String)] = []
    for index in 0..<900 {
      let phase = index < 250 ? "rest" : index < 500 ? "task" : index < 700 ? "rest" : "recovery"
      values.append((Double(index), cos(Double(index)) * 3 + (phase == "task" ? 10 : 0), phase))
    }
    let root = try item(values)
    for shard in 0..<4 { try ItemAnalysis.analyze(root: root, item: "sub-01", shard: shard, shards: 4, log: { _ in }) }
    let summary = try ItemAnalysis.gather(root: root, item: "sub-01", log: { _ in })
    #expect(summary.phaseColumn == "label")
    #expect(summary.phases.map(\.phase) == ["rest", "task", "recovery"])
    for entry in summary.phases {
      let ys = values.filter { $0.2 == entry.phase }.map(\.1)
      let mean = ys.reduce(0, +) / Double(ys.count)
      let statistics = try #require(entry.columns["value"])
      #expect(statistics.count == ys.count)
      #expect(abs(statistics.mean - mean) < 1e-12)
      #expect(abs(statistics.standardDeviation - (ys.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(ys.count - 1)).squareRoot()) < 1e-12)
      #expect(entry.columns.keys.sorted() == ["t", "value"])  // numeric columns only
    }
    // The dashboard's table is summary's columns sampled by rowid: every 3rd of 900 rows
    // at maxPoints 300, with each sampled row's phase.
    let table = try ItemAnalysis.table(root: root, item: "sub-01", summary: summary, maxPoints: 300)
    #expect(table.step == 3)
    #expect(table.values[0] == stride(from: 0, to: 900, by: 3).map { Double($0) })
    #expect(table.phases == stride(from: 0, to: 900, by: 3).map { values[$0].2 })
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

@Suite(.tags(.medium)) struct ReportTests {
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

  // `sacct -n -P -o <JobTable.sacctFields>` (no -X): allocation lines and their steps,
  // which alone carry MaxRSS; the stale record's step is older than the job it would join.
  let sacctWithSteps = """
    1100_0|vm|2026-11-23T11:17:12|2026-11-23T11:17:15|2026-11-23T11:17:25|COMPLETED|10|00:08.000|1|2G||10
    1100_0.batch|vm|2026-11-23T11:17:15|2026-11-23T11:17:15|2026-11-23T11:17:25|COMPLETED|10|00:08.000|1||104857K|
    1100_0.extern|vm|2026-11-23T11:17:15|2026-11-23T11:17:15|2026-11-23T11:17:25|COMPLETED|10|00:00:00|1||1024K|
    1100_1|vm|2026-11-23T11:17:12|2026-11-23T11:17:16|2026-11-23T11:17:36|COMPLETED|20|00:12.000|1|2G||10
    1100_1.batch|vm|2026-11-23T11:17:16|2026-11-23T11:17:16|2026-11-23T11:17:36|COMPLETED|20|00:12.000|1||209715K|
    1100_1.batch|vm|2026-11-20T08:00:00|2026-11-20T08:00:00|2026-11-20T08:00:09|COMPLETED|9|00:09.000|1||999999K|
    1101|vm|2026-11-23T11:18:00|2026-11-23T11:18:01|2026-11-23T11:19:31|COMPLETED|90|1-00:00:00|2|1000Mc||60

    """

  @Test func sacctIsFoldedPerJobWithTheLatestRecordOfAReusedID() {
    let rows = JobTable.parseSacct(sacct, timeZone: TimeZone(identifier: "UTC")!)
    let array = rows["1020"]!
    #expect(array.tasks.count == 3)
    #expect(array.nodes == ["vm", "vm2"])
    #expect(array.states == ["COMPLETED", "FAILED"])
    #expect(array.end!.timeIntervalSince(array.start!) == 6)
    #expect(rows["1031"]!.states == ["COMPLETED"])
    #expect(rows["1031"]!.start!.timeIntervalSince(rows["1031"]!.submit!) == 2)
    #expect(rows["1040"]!.end == nil)
    #expect(rows["1050"]!.states == ["CANCELLED"])
    #expect(rows["1050"]!.nodes.isEmpty)
  }

  @Test func efficiencyIsLikeSeffFromTheStepsMaxRSS() {
    let rows = JobTable.parseSacct(sacctWithSteps, timeZone: TimeZone(identifier: "UTC")!)
    let array = rows["1100"]!
    #expect(array.tasks.map(\.id) == ["1100_0", "1100_1"])
    #expect(array.tasks[1].maxRSS == Double(209715 * 1024))  // not the stale step's 999999K
    #expect(array.tasks[0].timeLimit == 600)
    #expect(JobTable.efficiency(array.tasks) == "2 tasks: CPU 67% of 1 core · memory 204.8 MiB of 2.0 GiB (10.0%) · elapsed 20 s of 10 min 00 s (3.3%)")
    // A day of CPU time over 2 cores for 90 s is impossible but parses; per-CPU memory doubles.
    let single = rows["1101"]!.tasks[0]
    #expect(single.cpuSeconds == 86400)
    #expect(single.requestedMemory == Double(2000 * 1024 * 1024))
    #expect(JobTable.efficiency(rows["1101"]!.tasks).hasPrefix("CPU 48000% of 2 cores"))
    #expect(JobTable.efficiency(JobTable.parseSacct(sacct)["1040"]!.tasks) == "")  // still running
    // The local cluster: no jobacct_gather plugin (no MaxRSS, TotalCPU 0), a job under 1 s.
    let quick = JobTable.parseSacct("""
      2245|vm|2026-12-01T21:21:57|2026-12-01T21:22:00|2026-12-01T21:22:00|COMPLETED|0|00:00:00|1|1G||15
      2245.batch|vm|2026-12-01T21:22:00|2026-12-01T21:22:00|2026-12-01T21:22:00|COMPLETED|0|00:00:00|1|||
      """)
    #expect(JobTable.efficiency(quick["2245"]!.tasks) == "CPU: ran under 1 s · memory 1.0 GiB asked, MaxRSS not recorded · elapsed 0 s of 15 min 00 s (0.0%)")
  }

  @Test func theLedgerBecomesOneRowPerSchedulerJob() {
    func record(_ event: String, _ name: String, _ id: String, _ time: Double, _ result: String? = nil, scheduler: String = "Slurm", ci: String = "7") -> LedgerRecord {
      LedgerRecord(event: event, ciJobID: ci, ciJobName: name, ciJobStage: "s", scheduler: scheduler, schedulerJobID: id, host: "h", time: time, result: result)
    }
    let ledger = [
      record("submitted", "analyze", "1020", 0), record("ended", "analyze", "1020", 10, "failed"),
      record("submitted", "publish", "1040", 20, ci: "9"),
      record("submitted", "local one", "4242", 100, scheduler: "local"), record("ended", "local one", "4242", 175, "succeeded"),
      record("submitted", "elsewhere", "4243", 100, scheduler: "local"),
    ]
    let accounting = JobTable.parseSacct(sacct, timeZone: TimeZone(identifier: "UTC")!)
    let now = accounting["1040"]!.start!.addingTimeInterval(30)
    let rows = JobTable.rows(ledger: ledger, accounting: accounting, currentJob: "9", now: now)
    #expect(rows.map(\.name) == ["analyze", "publish", "local one", "elsewhere"])
    #expect(rows[0].schedulerJob == "1020 (3 tasks)")
    #expect(rows[0].state == "completed, failed")
    #expect(rows[0].queued == "3 s")
    #expect(rows[1].state == "this job")  // no "ended" record, and it is publish's own
    #expect(rows[1].ran == "30 s")
    #expect(rows[2].ran == "1 min 15 s")
    #expect(rows[2].nodes == "h")
    #expect(rows[3].state == "running")
  }

  /// publish reads the ledger with the type ci-run writes it with: a line exactly as the
  /// driver appends it (runner_stage included), and a torn line named by its number.
  @Test func publishReadsTheLedgerTheDriverWrites() throws {
    let record = LedgerRecord(
      event: LedgerRecord.submitted, ciJobID: "7", ciJobName: "map", ciJobStage: "analyze", runnerStage: "build_script",
      scheduler: "Slurm", schedulerJobID: "62", host: "node1", time: 1, result: nil)
    let path = try scratch() + "/1001.jsonl"
    var text = try record.encodedLine()
    text.append(contentsOf: Array("\n".utf8))
    FileManager.default.createFile(atPath: path, contents: text)
    #expect(try JobTable.readLedger(path) == [record])
    text.append(contentsOf: Array("{\"event\":\"ended\",\"ci_job_id\"\n".utf8))
    FileManager.default.createFile(atPath: path, contents: text)
    #expect(throws: WorkerError("publish: \(path):2: not a ledger record")) { try JobTable.readLedger(path) }
  }

  @Test func columnNamesReadAsWords() {
    #expect(Labels.column("heart_rate_bpm") == "heart rate (bpm)")
    #expect(Labels.column("skin_temp_c") == "skin temperature (°C)")
    #expect(Labels.column("time_s") == "time (s)")
    #expect(Labels.column("value") == "value")
    let bins = Plotly.bins([0.99994, 0.999945, 0.99995, 0.99996], target: 4)
    #expect(bins.labels == ["0.999940", "0.999945", "0.999950", "0.999955", "0.999960"])
  }

  /// A reduce.json as svd-reduce writes it, alignments a few 1e-5 apart.
  func reduceResult(_ directory: String) throws {
    let alignments: [Double] = (0..<50).map { (index: Int) -> Double in
      let sign: Double = index % 2 == 0 ? 1 : -1
      return sign * (0.99990 + Double(index % 10) * 1e-5)
    }
    let byBlocks: [[String: Any]] = [1, 2, 5, 10, 20, 50].map { (k: Int) -> [String: Any] in ["blocks": k, "error": 0.01 / Double(k).squareRoot()] }
    let result: [String: Any] = [
      "nrow": 10, "ncol": 10, "blocks": 50, "seeds": "0-49", "reduce_error": 0.001, "mean_single_block_error": 0.01, "exact_error": 0.0009,
      "error_by_blocks": byBlocks, "v_alignments": alignments,
    ]
    try JSONSerialization.data(withJSONObject: result).write(to: URL(fileURLWithPath: "\(directory)/reduce.json"))
  }

  @Test func theSVDDashboardHasExactBinEdgesAndASliderOverK() throws {
    let directory = try scratch()
    try reduceResult(directory)
    let set = try Visualize.svd(reduce: "\(directory)/reduce.json", to: "\(directory)/figures", log: { _ in })
    #expect(set.figures.map(\.file) == ["svd-dashboard.plotly.json"])
    let figure = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(directory)/figures/svd-dashboard.plotly.json"))) as? [String: Any])
    let traces = try #require(figure["data"] as? [[String: Any]])
    let bars = try #require(traces.first { $0["type"] as? String == "bar" })
    let ranges = try #require(bars["customdata"] as? [String])
    // 0.9999 to 0.99999 in about √50 bins: round 2e-5 wide bins, printed exactly.
    #expect(ranges == ["[0.99990, 0.99992)", "[0.99992, 0.99994)", "[0.99994, 0.99996)", "[0.99996, 0.99998)", "[0.99998, 1.00000]"])
    #expect((bars["y"] as? [Int])?.reduce(0, +) == 50)
    let layout = try #require(figure["layout"] as? [String: Any])
    let slider = try #require((layout["sliders"] as? [[String: Any]])?.first)
    let steps = try #require(slider["steps"] as? [[String: Any]])
    #expect(steps.map { $0["label"] as? String } == ["1", "2", "5", "10", "20", "50"])
    // Each step marks the error at k and counts the first k seeds.
    for step in steps {
      let k = Int(step["label"] as! String)!
      let args = try #require(step["args"] as? [Any])
      let data = try #require(args[0] as? [String: Any])
      let ys = try #require(data["y"] as? [[Any]])
      #expect((ys[1] as? [Int])?.reduce(0, +) == k)
      #expect(((args[1] as? [String: Any])?["title.text"] as? String)?.hasPrefix("k = \(k) blocks<br>reduce error ") == true)
    }
  }

  @Test func theDataDashboardOffersEverySignalAndShadesTheTask() throws {
    let root = try scratch()
    var text = "time_s,heart_rate_bpm,skin_temp_c,condition\n"
    for index in 0..<300 {
      let task = index >= 100 && index < 200
      text += "\(Double(index) / 10),\(60 + (task ? 20 : 0) + Double(index % 3)),\(33 - (task ? 0.5 : 0)),\(task ? "task" : "rest")\n"
    }
    try text.write(toFile: "\(root)/in.csv", atomically: true, encoding: .utf8)
    for item in ["sub-01", "sub-02"] {
      _ = try Converter(input: "\(root)/in.csv", item: item, outputRoot: root, log: { _ in }).run()
      try ItemAnalysis.analyze(root: root, item: item, shard: 0, shards: 1, log: { _ in })
      _ = try ItemAnalysis.gather(root: root, item: item, log: { _ in })
    }
    let set = try Visualize.data(root: root, to: "\(root)/figures", log: { _ in })
    let figure = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(root)/figures/signals.plotly.json"))) as? [String: Any])
    let traces = try #require(figure["data"] as? [[String: Any]])
    #expect(traces.map { $0["name"] as? String } == ["sub-01", "sub-02", "sub-01 per phase", "sub-02 per phase"])
    let layout = try #require(figure["layout"] as? [String: Any])
    let menu = try #require((layout["updatemenus"] as? [[String: Any]])?.first?["buttons"] as? [[String: Any]])
    #expect(menu.map { $0["label"] as? String } == ["heart rate (bpm)", "skin temperature (°C)"])
    let shapes = try #require(layout["shapes"] as? [[String: Any]])
    #expect(shapes.count == 1)
    #expect(shapes[0]["x0"] as? Double == 10 && shapes[0]["x1"] as? Double == 19.9)
    #expect((layout["title"] as? [String: Any])?["text"] as? String == "Heart rate (bpm)<br>task − rest: sub-01 +20, sub-02 +20")
    let phases = try #require(set.tables.last)
    #expect(phases.columns == ["item", "signal", "phase", "n", "mean", "sd"])
    #expect(phases.rows.contains(["sub-01", "skin temperature (°C)", "task", "100", "32.5", "0"]))
    // All, then 0-10 s, 10-20 s, 20-30 s (29.9 s long; 5.98 rounds to 6, not a 1-2-5 width).
    let windows = try #require((layout["sliders"] as? [[String: Any]])?.first?["steps"] as? [[String: Any]])
    #expect(windows.map { $0["label"] as? String } == ["all", "0–6", "6–12", "12–18", "18–24", "24–30"])
  }

  @Test func publishEmbedsTheFiguresPicksUpYourOwnAndEscapesText() throws {
    let directory = try scratch()
    try #"{"data": [{"type": "scatter", "x": [1], "y": [2], "name": "</script><b>"}], "layout": {}}"#
      .write(toFile: "\(directory)/f.plotly.json", atomically: true, encoding: .utf8)
    // A user's own figure (say plotly.py's fig.write_json from a Python step), not listed.
    try #"{"data": [{"type": "bar", "x": ["a"], "y": [3]}], "layout": {"title": {"text": "Mine"}, "meta": {"caption": "by hand"}}}"#
      .write(toFile: "\(directory)/mine.plotly.json", atomically: true, encoding: .utf8)
    try ItemAnalysis.writeJSON(
      FigureSet(
        headline: "h1", figures: [.init(file: "f.plotly.json", title: "A figure", caption: "x < y")],
        tables: [.init(caption: "T", columns: ["k", "v"], rows: [["a", "<script>"]])]), to: "\(directory)/figures.json")
    let set = try Publisher.figureSet(directory: directory)
    #expect(set.figures.map(\.title) == ["A figure", "Mine"])
    #expect(set.figures[1].caption == "by hand")
    let jobs = [
      CIJobRow(name: "map", stage: "map", scheduler: "Slurm", schedulerJob: "12", nodes: "n1", queued: "1 s", ran: "2 s", state: "completed", efficiency: "CPU 90% of 1 core"),
      CIJobRow(name: "publish", stage: "publish", scheduler: "Slurm", schedulerJob: "13", nodes: "n1", queued: "1 s", ran: "", state: "this job"),
    ]
    let structure = PipelineReport.Structure(stages: ["map", "publish"], needs: ["publish": ["map"]])
    let pipeline = Publisher.Pipeline(jobs: jobs, dag: PipelineReport.dag(jobs: jobs, structure: structure), facts: [("Branch or tag", "main")])
    let html = try Publisher(title: "Report <1>", description: "d", source: "s", figures: set, figureDirectory: directory, pipeline: pipeline).render()
    #expect(html.contains("<title>Report &lt;1&gt;</title>"))
    #expect(html.contains(#"<\/script><b>"#) && !html.contains("</script><b>"))
    #expect(html.contains("&lt;script&gt;"))
    #expect(html.contains("<script src=\"plotly.min.js\"></script>"))
    #expect(html.components(separatedBy: "class=\"plotly-figure\"").count - 1 == 2)
    #expect(html.contains("<td>Slurm 12</td><td>n1</td>"))
    #expect(html.contains("<td>this job</td><td>not measured</td>"))
    #expect(html.contains("<dt>Branch or tag</dt><dd>main</dd>"))
    #expect(html.components(separatedBy: "class=\"edge\"").count - 1 == 1)
    #expect(html.contains("x &lt; y"))
    try "{\"layout\": {}}".write(toFile: "\(directory)/bad.plotly.json", atomically: true, encoding: .utf8)
    #expect { try Publisher.figureSet(directory: directory) } throws: { "\($0)".contains("bad.plotly.json is not a plotly figure") }
    #expect { try Publisher.figureSet(directory: directory + "/none") } throws: { "\($0)".contains("no figures.json and no *.plotly.json") }
    try FileManager.default.removeItem(atPath: "\(directory)/bad.plotly.json")
    #expect(throws: WorkerError.self) {
      try Publisher(title: "t", description: "", source: "", figures: set, figureDirectory: directory, pipeline: .init(jobs: []), template: "{% for x in %}").render()
    }
    // Stencil renders an unclosed tag as the text before it (a 4-byte page), silently.
    #expect(throws: WorkerError("publish: the template's {{ on line 2 is not closed with }}")) {
      try Publisher(title: "t", description: "", source: "", figures: set, figureDirectory: directory, pipeline: .init(jobs: []), template: "<h1>\n{{ title }</h1>").render()
    }
  }

  @Test func theDAGFollowsNeedsOrElseTheStages() throws {
    let directory = try scratch()
    try """
      stages: [a, b, c]
      one: {stage: a, needs: [], script: [x]}
      two: {stage: a, needs: [], script: [x]}
      three: {stage: b, needs: [one], script: [x]}
      four: {stage: c, needs: [{job: three}, {job: two}], script: [x]}
      """.write(toFile: "\(directory)/ci.yml", atomically: true, encoding: .utf8)
    let structure = try PipelineReport.structure(gitlabCI: "\(directory)/ci.yml")
    #expect(structure.stages == ["a", "b", "c"])
    #expect(structure.needs["four"] == ["three", "two"])
    let jobs = [("one", "a"), ("two", "a"), ("three", "b"), ("four", "c")].map {
      CIJobRow(name: $0.0, stage: $0.1, scheduler: "Slurm", schedulerJob: "1", nodes: "", queued: "", ran: "", state: "completed")
    }
    let svg = PipelineReport.dag(jobs: jobs, structure: structure)
    #expect(svg.components(separatedBy: "class=\"edge\"").count - 1 == 3)
    #expect(svg.components(separatedBy: "<g class=\"job\">").count - 1 == 4)
    // Without the file: every job after each job of the stage before it.
    #expect(PipelineReport.dag(jobs: jobs, structure: nil).components(separatedBy: "class=\"edge\"").count - 1 == 2 + 1)
    // Two chains submitted crosswise still run side by side: each row follows its parents.
    let crossed = [("a1", "a"), ("a2", "a"), ("b2", "b"), ("b1", "b")].map {
      CIJobRow(name: $0.0, stage: $0.1, scheduler: "Slurm", schedulerJob: "1", nodes: "", queued: "", ran: "", state: "completed")
    }
    let chains = PipelineReport.dag(jobs: crossed, structure: .init(stages: ["a", "b"], needs: ["b1": ["a1"], "b2": ["a2"]]))
    func x(_ name: String) -> Double? {
      guard let node = chains.range(of: "<title>\(name):"), let at = chains.range(of: "x=\"", range: node.upperBound..<chains.endIndex) else { return nil }
      return Double(chains[at.upperBound...].prefix { $0 != "\"" })
    }
    #expect(x("b1") == x("a1") && x("b2") == x("a2") && x("a1")! < x("a2")!)
    try "[unclosed".write(toFile: "\(directory)/bad.yml", atomically: true, encoding: .utf8)
    #expect { try PipelineReport.structure(gitlabCI: "\(directory)/bad.yml") } throws: { "\($0)".contains("bad.yml is not YAML") }
  }
}

@Suite(.tags(.large)) struct PlotlyPyFigureTests {
  /// What docs/workers.md promises: a figure written by plotly.py (a Python step) is
  /// picked up as it is, with its title and caption.
  @Test func aFigureWrittenByPlotlyPyIsPublished() throws {
    let directory = try scratch()
    let python = Process()
    python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    python.arguments = [
      "python3", "-c",
      """
      import sys, plotly.graph_objects as go
      figure = go.Figure(go.Scatter(x=[1, 2, 3], y=[2, 4, 3], name="mine"))
      figure.update_layout(title="From Python", meta={"caption": "written by plotly.py"})
      figure.write_json(sys.argv[1])
      """, "\(directory)/python.plotly.json",
    ]
    try python.run()
    python.waitUntilExit()
    try #require(python.terminationStatus == 0, "python3 with plotly (scripts/test installs it with pip)")
    let set = try Publisher.figureSet(directory: directory)
    #expect(set.figures.map(\.title) == ["From Python"])
    #expect(set.figures.map(\.caption) == ["written by plotly.py"])
    let html = try Publisher(title: "t", description: "", source: "", figures: set, figureDirectory: directory, pipeline: .init(jobs: [])).render()
    #expect(html.contains("\"name\":\"mine\""))
  }
}
