import ArgumentParser
import CustomExecutorAPI
import Foundation
import Report
import SVD
import WorkerTasks
import Workers

/// ci-worker: the payloads of the course's pipelines, one subcommand per task. Each is a
/// good citizen of a Slurm job: it reads SLURM_ARRAY_TASK_ID/COUNT and DATA_DERIV, logs
/// progress to stderr, and exits non-zero with one clear line on bad input.
struct CIWorker: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "ci-worker", abstract: "Job payloads for ci-slurm pipelines.",
    subcommands: WorkerTask.allCases.map(\.command))
}

extension WorkerTask {
  /// Exhaustive, so a task in the shared list (which ci-gen accepts) always has a command.
  var command: any ParsableCommand.Type {
    switch self {
    case .download: DownloadCommand.self
    case .convert: ConvertCommand.self
    case .analyze: AnalyzeCommand.self
    case .gather: GatherCommand.self
    case .svdMap: SVDMapCommand.self
    case .svdReduce: SVDReduceCommand.self
    case .visualize: VisualizeCommand.self
    case .publish: PublishCommand.self
    }
  }
}

func environment(_ name: String) -> String? {
  ProcessInfo.processInfo.environment[name].flatMap { $0.isEmpty ? nil : $0 }
}

func failing(_ body: () throws -> Void) throws {
  do {
    try body()
  } catch {
    FileHandle.standardError.write(Data("ci-worker: \(WorkerError.oneLine(error))\n".utf8))
    throw ExitCode(1)
  }
}

struct SVDMapCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: WorkerTask.svdMap.rawValue, abstract: "Per seed: X = 3 u vᵀ + Z/1000, its top right singular vector, one SQLite row.")
  @Option(help: "Rows of X.") var nrow = 1000
  @Option(help: "Columns of X.") var ncol = 1000
  @Option(help: "Seeds, e.g. 0-999; shared across the Slurm array's tasks.") var seeds: String
  @Option(help: "Where the shard files go (default: $DATA_DERIV/svd; one of the two is needed).") var out: String?
  @Option(help: "Also write this shard as CSV.") var csv: String?
  @Flag(help: "Also keep the shard's sum of XᵀX for svd-reduce --exact (8·ncol² bytes).") var gram = false
  @Option(help: "power: the top vector only, certified, else dgesdd; full: the course's dgesdd of all of X.")
  var method = SVDMethod.power

  @Flag(help: "Compute every seed again, even those the shard holds.") var force = false

  func run() throws {
    try failing {
      let task = environment("SLURM_ARRAY_TASK_ID").flatMap { Int($0) } ?? 0
      let tasks = environment("SLURM_ARRAY_TASK_COUNT").flatMap { Int($0) } ?? 1
      var map = SVDMap(
        nrow: nrow, ncol: ncol, seeds: try SeedList.parse(seeds),
        outputDirectory: try SVDMap.outputDirectory(out: out, dataDeriv: environment("DATA_DERIV")), task: task, tasks: tasks,
        log: logLine)
      map.keepGram = gram
      map.method = method
      map.force = force
      try map.run()
      if let csv { try map.exportCSV(to: csv) }
    }
  }
}

/// `--method power|full`; ArgumentParser lists the two values when another is given.
extension SVDMethod: ExpressibleByArgument {}

struct SVDReduceCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: WorkerTask.svdReduce.rawValue, abstract: "Stack every seed's estimate; report ‖vt − v‖ against the single blocks'.")
  @Option(help: "Rows of X.") var nrow = 1000
  @Option(help: "Columns of X.") var ncol = 1000
  @Option(name: .customLong("in"), help: "The shard directory (*.sqlite, else *.csv; default: $DATA_DERIV/svd).") var input: String?
  @Flag(help: "Also the exact answer for all X stacked, from the shards' Gram sums (svd-map --gram).") var exact = false
  @Option(help: "Seeds that must all be there, e.g. 0-999.") var seeds: String?
  @Option(help: "power: the top vector only, certified, else dgesdd; full: dgesdd of each stack.")
  var method = SVDMethod.power
  @Option(help: "Where the JSON result goes (default: stdout).") var out: String?

  @Flag(help: "Compute the reduce even when --out was made from these shards.") var force = false

  func run() throws {
    try failing {
      let result = try SVDReduce.run(
        directory: input ?? "\(environment("DATA_DERIV") ?? ".")/svd", nrow: nrow, ncol: ncol, expected: try seeds.map(SeedList.parse),
        exact: exact, method: method, out: out, force: force, log: logLine)
      if out == nil {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try encoder.encode(result), as: UTF8.self))
      }
    }
  }
}

struct ConvertCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: WorkerTask.convert.rawValue, abstract: "A raw CSV or JSON Lines table to SQLite in $DATA_DERIV/<item>/, with metadata.yaml.")
  @Option(help: "The raw file (.csv, or .jsonl/.ndjson).") var input: String
  @Option(help: "The base item (default: $DATASET_ID).") var item: String?
  @Option(help: "Where item directories go (default: $DATA_DERIV).") var out: String?
  @Option(help: "csv or jsonl (default: from the file name).") var format: String?
  @Flag(help: "Convert even when the item was made from this very input.") var force = false

  func run() throws {
    try failing {
      guard let item = item ?? environment("DATASET_ID") else { throw WorkerError("give --item or set DATASET_ID") }
      guard let root = out ?? environment("DATA_DERIV") else { throw WorkerError("give --out or set DATA_DERIV") }
      var chosen: Converter.Format? = nil
      if let format {
        guard let value = Converter.Format(rawValue: format) else { throw WorkerError("--format is csv or jsonl, not \(format)") }
        chosen = value
      }
      try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
      var converter = Converter(input: input, item: item, outputRoot: root, format: chosen, log: logLine)
      converter.force = force
      _ = try converter.runUnlessUpToDate()
    }
  }
}

struct DownloadCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: WorkerTask.download.rawValue, abstract: "An http(s) or file URL to $DATA_RAW, resumable, retried, checksummed.")
  @Option(help: "The URL (http://, https:// or file://).") var url: String
  @Option(help: "The directory to download into (default: $DATA_RAW); the file keeps the URL's name.") var to: String?
  @Option(help: "The final path instead of <to>/<name from the URL>.") var output: String?
  @Option(help: "The expected SHA-256 (64 hex digits); a mismatch fails the job.") var sha256: String?
  @Option(help: "Attempts before giving up.") var attempts = 5
  @Option(help: "Seconds before the second attempt; doubles each time.") var backoff = 1.0
  @Option(help: "Seconds without progress before an attempt fails.") var timeout = 60.0
  @Flag(help: "Download even when the file is there with the expected sha256.") var force = false

  func run() throws {
    try failing {
      let parsed = try Downloader.parse(url)
      let destination = try Downloader.destination(of: parsed, output: output, directory: to ?? environment("DATA_RAW"))
      guard attempts >= 1, backoff >= 0, timeout > 0 else { throw WorkerError("download: --attempts ≥ 1, --backoff ≥ 0 and --timeout > 0") }
      var downloader = try Downloader(url: parsed, destination: destination, expectedSHA256: sha256, log: logLine)
      downloader.force = force
      downloader.attempts = attempts
      downloader.firstBackoff = backoff
      downloader.timeout = timeout
      _ = try downloader.run()
    }
  }
}

struct AnalyzeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: WorkerTask.analyze.rawValue, abstract: "Column statistics of one block of an item's rows (one array task).")
  @Option(help: "The base item (default: $DATASET_ID).") var item: String?
  @Option(help: "This task's shard (default: $SLURM_ARRAY_TASK_ID, else 0).") var shard: Int?
  @Option(help: "The number of shards (default: $SLURM_ARRAY_TASK_COUNT, else 1).") var shards: Int?
  @Option(help: "Where item directories are (default: $DATA_DERIV).") var data: String?
  @Flag(help: "Analyze even when the shard was made from this very database.") var force = false

  func run() throws {
    try failing {
      let (item, root) = try itemAndRoot("analyze", item: item, data: data)
      let shard = shard ?? environment("SLURM_ARRAY_TASK_ID").flatMap { Int($0) } ?? 0
      let shards = shards ?? environment("SLURM_ARRAY_TASK_COUNT").flatMap { Int($0) } ?? 1
      try ItemAnalysis.analyze(root: root, item: item, shard: shard, shards: shards, force: force, log: logLine)
    }
  }
}

struct GatherCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: WorkerTask.gather.rawValue, abstract: "Merge an item's analyze shards into <item>/summary.json.")
  @Option(help: "The base item (default: $DATASET_ID).") var item: String?
  @Option(help: "Where item directories are (default: $DATA_DERIV).") var data: String?
  @Flag(help: "Merge even when summary.json was made from these very shards.") var force = false

  func run() throws {
    try failing {
      let (item, root) = try itemAndRoot("gather", item: item, data: data)
      try ItemAnalysis.gather(root: root, item: item, force: force, log: logLine)
    }
  }
}

struct VisualizeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: WorkerTask.visualize.rawValue, abstract: "Plotly figures (JSON) and tables for publish: the SVD reduce, or every data item's signals.")
  @Option(help: "The SVD pipeline's data dir (reads <dir>/reduce.json).") var svd: String?
  @Option(help: "The data pipeline's data dir (reads <dir>/<item>/summary.json and data.sqlite).") var data: String?
  @Option(help: "Where the figures go (default: $DATA_DERIV/figures).") var out: String?
  @Flag(help: "Draw even when the figures were made from these very inputs.") var force = false

  func run() throws {
    try failing {
      guard let directory = out ?? environment("DATA_DERIV").map({ "\($0)/figures" }) else {
        throw WorkerError("visualize: give --out or set DATA_DERIV")
      }
      try Visualize.run(svd: svd, data: data, to: directory, force: force, log: logLine)
    }
  }
}

struct PublishCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: WorkerTask.publish.rawValue, abstract: "One HTML dashboard (plotly.js beside it, no CDN) from visualize's figures and the jobs ledger.")
  @Option(help: "The report's title (default: $PIPELINE_TITLE).") var title: String?
  @Option(help: "A paragraph under the title (default: $PIPELINE_DESCRIPTION).") var description: String?
  @Option(help: "Where the data came from (default: $PIPELINE_SOURCE).") var source: String?
  @Option(help: "visualize's output, and any *.plotly.json of yours (default: $DATA_DERIV/figures).") var figures: String?
  @Option(help: "The executor's jobs ledger (default: $CI_SLURM_JOBS_LEDGER).") var jobs: String?
  @Option(help: "The pipeline's .gitlab-ci.yml, for the DAG's edges (default: $CI_CONFIG_PATH, else ./.gitlab-ci.yml if there).")
  var pipelineFile: String?
  @Option(help: "plotly.min.js to ship beside the page (default: $PLOTLY_JS, else the one of Python's plotly package).")
  var plotlyJs: String?
  @Option(help: "A Stencil (Jinja-style) template instead of the built-in one.") var template: String?
  @Flag(help: "Print the built-in template and exit (a start for --template).") var printTemplate = false
  @Option(help: "The output directory: index.html and plotly.min.js.") var out = "public"
  @Flag(help: "Render even when the page was made from these very inputs.") var force = false

  func run() throws {
    if printTemplate {
      print(Publisher.defaultTemplate, terminator: "")
      return
    }
    try failing {
      guard let title = title ?? environment("PIPELINE_TITLE") else { throw WorkerError("publish: give --title or set PIPELINE_TITLE") }
      guard let directory = figures ?? environment("DATA_DERIV").map({ "\($0)/figures" }) else {
        throw WorkerError("publish: give --figures or set DATA_DERIV")
      }
      var task = PublishTask(
        title: title, description: description ?? environment("PIPELINE_DESCRIPTION") ?? "",
        source: source ?? environment("PIPELINE_SOURCE") ?? "not stated", figureDirectory: directory, out: out, log: logLine)
      task.ledger = jobs ?? environment(DriverVariable.jobsLedger)
      task.pipelineFile = pipelineFile
      task.pipelineFileCandidates = [environment("CI_CONFIG_PATH"), ".gitlab-ci.yml"].compactMap { $0 }
      task.plotlyJS = plotlyJs ?? environment("PLOTLY_JS")
      task.template = template
      task.currentJob = environment("CI_JOB_ID")
      task.facts = Labels.pipeline.compactMap { entry in environment(entry.variable).map { (entry.label, $0) } }
      task.force = force
      try task.run()
    }
  }
}

/// The item and the data directory of an item task, from the options or the job's variables.
func itemAndRoot(_ task: String, item: String?, data: String?) throws -> (String, String) {
  guard let item = item ?? environment("DATASET_ID") else { throw WorkerError("\(task): give --item or set DATASET_ID") }
  guard let root = data ?? environment("DATA_DERIV") else { throw WorkerError("\(task): give --data or set DATA_DERIV") }
  return (item, root)
}

func logLine(_ line: String) { FileHandle.standardError.write(Data((line + "\n").utf8)) }

if environment("OPENBLAS_NUM_THREADS") == nil, let cpus = environment("SLURM_CPUS_PER_TASK").flatMap({ Int($0) }) {
  BLASThreads.limit(to: cpus)
}
CIWorker.main()
