import ArgumentParser
import Foundation
import Workers

/// ci-worker: the payloads of the course's pipelines, one subcommand per task. Each is a
/// good citizen of a Slurm job: it reads SLURM_ARRAY_TASK_ID/COUNT and DATA_DERIV, logs
/// progress to stderr, and exits non-zero with one clear line on bad input.
struct CIWorker: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "ci-worker", abstract: "Job payloads for ci-slurm pipelines.",
    subcommands: [DownloadCommand.self, ConvertCommand.self, SVDMapCommand.self, SVDReduceCommand.self])
}

func environment(_ name: String) -> String? {
  ProcessInfo.processInfo.environment[name].flatMap { $0.isEmpty ? nil : $0 }
}

func failing(_ body: () throws -> Void) throws {
  do {
    try body()
  } catch let error as WorkerError {
    FileHandle.standardError.write(Data("ci-worker: \(error.message)\n".utf8))
    throw ExitCode(1)
  }
}

struct SVDMapCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "svd-map", abstract: "Per seed: X = 3 u vᵀ + Z/1000, its top right singular vector, one SQLite row.")
  @Option(help: "Rows of X.") var nrow = 1000
  @Option(help: "Columns of X.") var ncol = 1000
  @Option(help: "Seeds, e.g. 0-999; shared across the Slurm array's tasks.") var seeds: String
  @Option(help: "Where the shard files go (default: $DATA_DERIV/svd, else ./svd).") var out: String?
  @Option(help: "Also write this shard as CSV.") var csv: String?
  @Flag(help: "Also keep the shard's sum of XᵀX for svd-reduce --exact (8·ncol² bytes).") var gram = false

  func run() throws {
    try failing {
      let task = environment("SLURM_ARRAY_TASK_ID").flatMap { Int($0) } ?? 0
      let tasks = environment("SLURM_ARRAY_TASK_COUNT").flatMap { Int($0) } ?? 1
      guard task >= 0, tasks >= 1, task < max(tasks, task + 1) else { throw WorkerError("bad SLURM_ARRAY_TASK_ID/COUNT") }
      let directory = out ?? "\(environment("DATA_DERIV") ?? ".")/svd"
      var map = SVDMap(
        nrow: nrow, ncol: ncol, seeds: try SeedList.parse(seeds), outputDirectory: directory, task: task, tasks: tasks,
        log: { FileHandle.standardError.write(Data(($0 + "\n").utf8)) })
      map.keepGram = gram
      try map.run()
      if let csv {
        let store = try ResultStore(readingFrom: map.shardPath, table: SVDMap.table(nrow: nrow, ncol: ncol))
        try SVDMap.exportCSV(from: store, ncol: ncol, to: csv)
      }
    }
  }
}

struct SVDReduceCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "svd-reduce", abstract: "Stack every seed's estimate; report ‖vt − v‖ against the single blocks'.")
  @Option(help: "Rows of X.") var nrow = 1000
  @Option(help: "Columns of X.") var ncol = 1000
  @Option(name: .customLong("in"), help: "The shard directory (*.sqlite, else *.csv; default: $DATA_DERIV/svd).") var input: String?
  @Flag(help: "Also the exact answer for all X stacked, from the shards' Gram sums (svd-map --gram).") var exact = false
  @Option(help: "Seeds that must all be there, e.g. 0-999.") var seeds: String?
  @Option(help: "Where the JSON result goes (default: stdout).") var out: String?

  func run() throws {
    try failing {
      let directory = input ?? "\(environment("DATA_DERIV") ?? ".")/svd"
      let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
      var shards = names.filter { $0.hasSuffix(".sqlite") }.sorted().map { "\(directory)/\($0)" }
      if shards.isEmpty { shards = names.filter { $0.hasSuffix(".csv") }.sorted().map { "\(directory)/\($0)" } }
      guard !shards.isEmpty else { throw WorkerError("no shard files (*.sqlite or *.csv) in \(directory)") }
      let result = try SVDReduce.run(shards: shards, nrow: nrow, ncol: ncol, expected: try seeds.map(SeedList.parse), exact: exact)
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
      let json = String(decoding: try encoder.encode(result), as: UTF8.self) + "\n"
      if let out {
        let temporary = "\(out).tmp-\(getpid())"
        try Data(json.utf8).write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, out) == 0 else { throw WorkerError("cannot write \(out)") }
      } else {
        print(json, terminator: "")
      }
      FileHandle.standardError.write(Data("svd-reduce: \(result.blocks) blocks: reduce error \(result.reduceError), mean single-block error \(result.meanSingleBlockError)\(result.exactError.map { ", exact (all X stacked) \($0)" } ?? "")\n".utf8))
    }
  }
}

struct ConvertCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "convert", abstract: "A raw CSV or JSON Lines table to SQLite in $DATA_DERIV/<item>/, with metadata.yaml.")
  @Option(help: "The raw file (.csv, or .jsonl/.ndjson).") var input: String
  @Option(help: "The base item (default: $DATASET_ID).") var item: String?
  @Option(help: "Where item directories go (default: $DATA_DERIV).") var out: String?
  @Option(help: "csv or jsonl (default: from the file name).") var format: String?

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
      _ = try Converter(input: input, item: item, outputRoot: root, format: chosen,
                        log: { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }).run()
    }
  }
}

struct DownloadCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "download", abstract: "An http(s) or file URL to $DATA_RAW, resumable, retried, checksummed.")
  @Option(help: "The URL (http://, https:// or file://).") var url: String
  @Option(help: "The directory to download into (default: $DATA_RAW); the file keeps the URL's name.") var to: String?
  @Option(help: "The final path instead of <to>/<name from the URL>.") var output: String?
  @Option(help: "The expected SHA-256 (64 hex digits); a mismatch fails the job.") var sha256: String?
  @Option(help: "Attempts before giving up.") var attempts = 5
  @Option(help: "Seconds before the second attempt; doubles each time.") var backoff = 1.0
  @Option(help: "Seconds without progress before an attempt fails.") var timeout = 60.0

  func run() throws {
    try failing {
      guard let parsed = URL(string: url), parsed.scheme != nil else { throw WorkerError("download: '\(url)' is not a URL") }
      let name = parsed.lastPathComponent
      let destination: String
      if let output {
        destination = output
      } else {
        guard let directory = to ?? environment("DATA_RAW") else { throw WorkerError("download: give --to or --output, or set DATA_RAW") }
        guard !name.isEmpty, name != "/" else { throw WorkerError("download: \(url) names no file; give --output") }
        destination = "\(directory)/\(name)"
      }
      guard attempts >= 1, backoff >= 0, timeout > 0 else { throw WorkerError("download: --attempts ≥ 1, --backoff ≥ 0 and --timeout > 0") }
      var downloader = try Downloader(
        url: parsed, destination: destination, expectedSHA256: sha256,
        log: { FileHandle.standardError.write(Data(($0 + "\n").utf8)) })
      downloader.attempts = attempts
      downloader.firstBackoff = backoff
      downloader.timeout = timeout
      _ = try downloader.run()
    }
  }
}

CIWorker.main()
