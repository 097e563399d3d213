import AtomicFiles
public import Foundation
import Workers

/// publish as a task: finds plotly.js, reads the figures, the jobs ledger (with Slurm's
/// accounting) and the pipeline's DAG, renders the page and writes it beside plotly.js.
/// Skipped when the page was made from these very inputs and parameters.
public struct PublishTask {
  public var title: String
  public var description: String
  public var source: String
  public var figureDirectory: String
  /// The executor's jobs ledger; without one the page has no pipeline section.
  public var ledger: String?
  /// The .gitlab-ci.yml for the DAG's edges: given, it must be readable.
  public var pipelineFile: String?
  /// The files tried when none is given (GitLab's CI_CONFIG_PATH may name another
  /// project's file, so a missing one is no error), and without one each job follows the
  /// previous stage.
  public var pipelineFileCandidates: [String] = []
  public var plotlyJS: String?
  public var template: String?
  public var out: String
  public var currentJob: String?
  /// Label and value (Labels.pipeline), from the job's variables.
  public var facts: [(label: String, value: String)] = []
  public var force = false
  public var log: (String) -> Void

  public init(title: String, description: String, source: String, figureDirectory: String, out: String, log: @escaping (String) -> Void) {
    (self.title, self.description, self.source, self.figureDirectory, self.out, self.log) =
      (title, description, source, figureDirectory, out, log)
  }

  public func run() throws {
    let plotlyPath = try Self.plotlyPath(given: plotlyJS)
    let plotly = try Self.plotlyScript(plotlyPath)
    let structureFile = pipelineFile ?? pipelineFileCandidates.first { FileManager.default.fileExists(atPath: $0) }
    var files = ["plotly.min.js": plotlyPath]
    for name in ((try? FileManager.default.contentsOfDirectory(atPath: figureDirectory)) ?? []) where !name.hasPrefix(".") {
      files["figures/\(name)"] = "\(figureDirectory)/\(name)"
    }
    if let ledger { files["ledger"] = ledger }
    if let structureFile { files["pipeline"] = structureFile }
    if let template { files["template"] = template }
    var parameters = ["title": title, "description": description, "source": source, "current job": currentJob ?? ""]
    for fact in facts { parameters["fact \(fact.label)"] = fact.value }
    let page = "\(out)/index.html"
    let recipe = try Recipe.hashing(task: "publish", files: files, parameters: parameters)
    // The record is kept beside the directory (`.public.made-from.json`), not in it:
    // everything in it is published.
    if !force, UpToDate.isCurrent(recipe, outputs: [out, page, "\(out)/plotly.min.js"]) {
      log("up to date: publish \(page) (from these \(files.count) inputs; --force renders again)")
      return
    }
    UpToDate.forget(out)
    let set = try Publisher.figureSet(directory: figureDirectory)
    var pipeline = Publisher.Pipeline(jobs: [])
    if let ledger {
      let records = try JobTable.readLedger(ledger)
      let slurmIDs = Set(records.filter { $0.scheduler == "Slurm" }.map { String($0.schedulerJobID.split(separator: "_")[0]) })
      let accounting = slurmIDs.isEmpty ? [:] : accounting(slurmIDs.sorted())
      pipeline.jobs = JobTable.rows(ledger: records, accounting: accounting, currentJob: currentJob)
      pipeline.dag = PipelineReport.dag(jobs: pipeline.jobs, structure: try structureFile.map { try PipelineReport.structure(gitlabCI: $0) })
      pipeline.timeline = PipelineReport.timeline(ledger: records, accounting: accounting)
    }
    pipeline.facts = facts
    var text = Publisher.defaultTemplate
    if let template {
      guard let data = FileManager.default.contents(atPath: template) else { throw WorkerError("publish: cannot read the template \(template)") }
      text = String(decoding: data, as: UTF8.self)
    }
    let publisher = Publisher(
      title: title, description: description, source: source, figures: set, figureDirectory: figureDirectory, pipeline: pipeline,
      template: text)
    let html = try publisher.render()
    try AtomicFiles.write(plotly, to: "\(out)/plotly.min.js", makeDirectories: true)
    try AtomicFiles.write(html, to: page, makeDirectories: true)
    try UpToDate.record(recipe, for: out)
    log("publish: \(page): \(set.figures.count) figures, \(pipeline.jobs.count) CI jobs; \(set.headline)")
  }

  static let plotlyHelp = "install it with `python3 -m pip install plotly`, or give --plotly-js PATH (or set PLOTLY_JS)"

  /// plotly.js: the given path, or the plotly package Python has (it ships plotly.min.js);
  /// never a CDN, so the page needs no network.
  static func plotlyPath(given: String?) throws -> String {
    if let given { return given }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [
      "python3", "-c", "import os, plotly; print(os.path.join(os.path.dirname(plotly.__file__), 'package_data', 'plotly.min.js'))",
    ]
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    if (try? process.run()) != nil {
      let data = output.fileHandleForReading.readDataToEndOfFile()
      process.waitUntilExit()
      if process.terminationStatus == 0 { return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
    }
    throw WorkerError("publish: plotly.js not found (Python has no plotly package): \(plotlyHelp)")
  }

  static func plotlyScript(_ path: String) throws -> Data {
    guard let data = FileManager.default.contents(atPath: path), String(decoding: data.prefix(4096), as: UTF8.self).contains("plotly") else {
      throw WorkerError("publish: \(path) is not plotly.js: \(plotlyHelp)")
    }
    return data
  }

  /// Slurm's accounting for the ledger's jobs; an empty answer (no slurmdbd) leaves the
  /// ledger's own times.
  func accounting(_ ids: [String]) -> [String: AccountingRow] {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["sacct", "-n", "-P", "-j", ids.joined(separator: ","), "-o", JobTable.sacctFields]
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    do { try process.run() } catch {
      log("publish: sacct is not available; queue and run times come from the executor's ledger")
      return [:]
    }
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return JobTable.parseSacct(String(decoding: data, as: UTF8.self))
  }
}
