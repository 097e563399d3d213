// FoundationEssentials where there is one: the driver's processes stay small (no ICU).
#if canImport(FoundationEssentials)
  public import FoundationEssentials
#else
  public import Foundation
#endif
public import Scheduling

/// What ci-run submitted for a CI job, so that ci-cleanup can cancel what is still running,
/// even after ci-run was killed with SIGKILL.
public struct JobState: Codable, Equatable, Sendable {
  public struct Submission: Codable, Equatable, Sendable {
    public var stage: String
    public var name: String
    /// nil while sbatch runs: cleanup then cancels by name.
    public var id: JobID?
    /// Set once ci-run saw every task end; cleanup need not ask Slurm about it.
    public var finished: Bool

    public init(stage: String, name: String, id: JobID?, finished: Bool) {
      self.stage = stage
      self.name = name
      self.id = id
      self.finished = finished
    }
  }

  public var submissions: [Submission] = []

  public init() {}

  public static func load(_ path: String) -> JobState {
    guard let data = FileManager.default.contents(atPath: path),
      let state = try? JSONDecoder().decode(JobState.self, from: data)
    else { return JobState() }
    return state
  }

  /// Written to a temp file and renamed, so a reader never sees half a file.
  public func save(_ path: String) throws {
    let data = try JSONEncoder().encode(self)
    try PrivateFiles.write(data, to: path)
  }
}

/// Files and directories only their owner may read: staged scripts hold secrets. With
/// run_as this runs as the account, so what it makes is the account's and nothing here
/// ever acts with more than the account's rights.
public enum PrivateFiles {
  /// Creates (or tightens) a private directory; a symlink in its place is refused.
  public static func makeDirectory(_ path: String, mode: Int = 0o700) throws {
    let manager = FileManager.default
    var info = stat()
    if lstat(path, &info) == 0 {
      guard info.st_mode & S_IFMT == S_IFDIR else { throw DriverFailure.system("\(path) exists and is not a directory") }
    } else {
      try manager.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }
    try manager.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
  }

  public static func write(_ data: Data, to path: String, mode: Int = 0o600) throws {
    let temporary = "\(path).tmp-\(ProcessInfo.processInfo.processIdentifier)"
    guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: mode]) else {
      throw DriverFailure.system("cannot write \(temporary)")
    }
    if rename(temporary, path) != 0 {
      unlink(temporary)
      throw DriverFailure.system("cannot write \(path): \(String(cString: strerror(errno)))")
    }
  }
}

#if canImport(Glibc)
  import Glibc
#endif
