import AtomicFiles
public import Foundation

/// What made an output: the SHA-256 of each input it was computed from and the parameters
/// that shaped it. Kept beside the output (`.<name>.made-from.json`), so a rerun of a
/// pipeline (GitLab's "Retry", a scheduled run) skips every task whose inputs and
/// parameters are unchanged, as Snakemake rebuilds only stale outputs.
public struct Recipe: Codable, Equatable, Sendable {
  public var task: String
  /// Input name (a path, or a role such as "database") -> SHA-256 of its bytes.
  public var inputs: [String: String]
  public var parameters: [String: String]

  public init(task: String, inputs: [String: String], parameters: [String: String] = [:]) {
    (self.task, self.inputs, self.parameters) = (task, inputs, parameters)
  }

  /// The recipe of `files` (name -> path), hashed now.
  public static func hashing(task: String, files: [String: String], parameters: [String: String] = [:]) throws -> Recipe {
    var inputs: [String: String] = [:]
    for (name, path) in files { inputs[name] = try UpToDate.sha256(ofFile: path) }
    return Recipe(task: task, inputs: inputs, parameters: parameters)
  }
}

/// The up-to-date check every worker makes before it computes. The order of writes keeps
/// a crash safe: the old record is removed before any output is replaced, and the new one
/// is written (atomically) only after every output is in place, so an output whose record
/// matches was always completely made from those inputs.
public enum UpToDate {
  public static func recordPath(for output: String) -> String {
    let url = URL(fileURLWithPath: output)
    return url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).made-from.json").path
  }

  /// True when every output exists and the first one's record equals `recipe`.
  public static func isCurrent(_ recipe: Recipe, outputs: [String]) -> Bool {
    guard let first = outputs.first, outputs.allSatisfy({ FileManager.default.fileExists(atPath: $0) }),
      let data = FileManager.default.contents(atPath: recordPath(for: first)),
      let stored = try? JSONDecoder().decode(Recipe.self, from: data)
    else { return false }
    return stored == recipe
  }

  /// Called before the outputs are replaced.
  public static func forget(_ output: String) { unlink(recordPath(for: output)) }

  /// Called after every output is in place.
  public static func record(_ recipe: Recipe, for output: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try AtomicFiles.write(encoder.encode(recipe) + Data("\n".utf8), to: recordPath(for: output), makeDirectories: true)
  }

  /// The SHA-256 of a file's bytes, read in 1 MiB pieces.
  public static func sha256(ofFile path: String) throws -> String {
    guard let file = FileHandle(forReadingAtPath: path) else {
      throw WorkerError("cannot read \(path): \(String(cString: strerror(errno)))")
    }
    defer { try? file.close() }
    var hash = SHA256()
    while let data = try file.read(upToCount: 1 << 20), !data.isEmpty { hash.update(data) }
    return hash.finalize()
  }
}
