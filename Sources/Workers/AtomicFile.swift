public import Foundation

/// Every worker output is written beside its final name and renamed into place, so a
/// killed or failed task never leaves a half-written file under the final name.
public enum AtomicFile {
  public static func write(_ data: Data, to path: String) throws {
    let directory = (path as NSString).deletingLastPathComponent
    if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
    let name = (path as NSString).lastPathComponent
    let temporary = directory.isEmpty ? ".\(name).tmp-\(getpid())" : "\(directory)/.\(name).tmp-\(getpid())"
    do {
      try data.write(to: URL(fileURLWithPath: temporary))
    } catch {
      unlink(temporary)
      throw WorkerError("cannot write \(path): \(error.localizedDescription)")
    }
    guard rename(temporary, path) == 0 else {
      let reason = String(cString: strerror(errno))
      unlink(temporary)
      throw WorkerError("cannot write \(path): \(reason)")
    }
  }

  public static func write(_ text: String, to path: String) throws { try write(Data(text.utf8), to: path) }
}
