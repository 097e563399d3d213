public import Foundation
#if canImport(FoundationNetworking)
  import FoundationNetworking
#endif

/// download: one URL (http, https or file) to a final path, through `<final>.part`.
/// A transfer that breaks resumes from the bytes already on disk (HTTP Range); transient
/// failures (connection errors, 408, 429, 5xx) are retried with exponential backoff; the
/// SHA-256 is computed while the bytes arrive and checked before the rename, so the final
/// name only ever holds a complete, verified file.
public struct Downloader {
  public var url: URL
  public var destination: String
  public var expectedSHA256: String?
  public var attempts = 5
  public var firstBackoff: TimeInterval = 1
  public var timeout: TimeInterval = 60
  public var log: (String) -> Void

  public struct Outcome: Equatable, Sendable {
    public var bytes: Int64
    public var sha256: String
    public var attemptsUsed: Int
    public var resumedFrom: Int64
    public var alreadyThere: Bool
  }

  public init(url: URL, destination: String, expectedSHA256: String?, log: @escaping (String) -> Void) throws {
    guard ["http", "https", "file"].contains(url.scheme?.lowercased() ?? "") else {
      throw WorkerError("download: \(url.absoluteString) is not an http, https or file URL")
    }
    if let expected = expectedSHA256 {
      guard expected.count == 64, expected.allSatisfy(\.isHexDigit) else {
        throw WorkerError("download: --sha256 must be 64 hex digits, not '\(expected)'")
      }
    }
    self.url = url
    self.destination = destination
    self.expectedSHA256 = expectedSHA256?.lowercased()
    self.log = log
  }

  public var partialPath: String { destination + ".part" }

  public func run() throws -> Outcome {
    if FileManager.default.fileExists(atPath: destination) {
      let sum = try Self.sha256(ofFile: destination)
      if let expectedSHA256, sum != expectedSHA256 {
        throw WorkerError("download: \(destination) exists with sha256 \(sum), not the expected \(expectedSHA256); remove it to download again")
      }
      let size = Self.size(of: destination)
      log("download: \(destination) is already there (sha256 \(sum))")
      return Outcome(bytes: size, sha256: sum, attemptsUsed: 0, resumedFrom: 0, alreadyThere: true)
    }
    let directory = (destination as NSString).deletingLastPathComponent
    if !directory.isEmpty {
      try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }
    var lastProblem = ""
    var resumedFrom: Int64 = 0
    for attempt in 1...max(1, attempts) {
      if attempt > 1 {
        let pause = firstBackoff * pow(2, Double(attempt - 2))
        log("download: attempt \(attempt) of \(attempts) in \(Self.seconds(pause)) (\(lastProblem))")
        Thread.sleep(forTimeInterval: pause)
      }
      let offset = Self.size(of: partialPath)
      if attempt == 1 { resumedFrom = offset }
      if offset > 0 { log("download: resuming \(url.absoluteString) at byte \(offset)") }
      switch try url.isFileURL ? copyFile(from: offset) : fetch(from: offset) {
      case .complete(let total, let sum):
        if let expectedSHA256, sum != expectedSHA256 {
          unlink(partialPath)
          throw WorkerError("download: checksum mismatch for \(url.absoluteString): expected sha256 \(expectedSHA256), got \(sum) (partial file removed)")
        }
        guard rename(partialPath, destination) == 0 else {
          throw WorkerError("download: cannot rename \(partialPath) to \(destination): \(String(cString: strerror(errno)))")
        }
        log("download: \(destination): \(Self.bytes(total)), sha256 \(sum)\(expectedSHA256 == nil ? "" : " (verified)")")
        return Outcome(bytes: total, sha256: sum, attemptsUsed: attempt, resumedFrom: resumedFrom, alreadyThere: false)
      case .retry(let problem):
        lastProblem = problem
      case .fatal(let problem):
        removeEmptyPart()
        throw WorkerError("download: \(problem)")
      }
    }
    removeEmptyPart()
    throw WorkerError("download: giving up on \(url.absoluteString) after \(attempts) attempts: \(lastProblem); \(Self.size(of: partialPath)) bytes kept in \(partialPath) for the next try")
  }

  /// A `.part` with bytes in it is kept for the next run to resume; an empty one is litter.
  func removeEmptyPart() {
    if FileManager.default.fileExists(atPath: partialPath), Self.size(of: partialPath) == 0 { unlink(partialPath) }
  }

  // MARK: - file://

  func copyFile(from offset: Int64) throws -> Transfer.Ending {
    let source = url.path
    guard let input = FileHandle(forReadingAtPath: source) else { return .fatal("cannot read \(source) (\(url.absoluteString))") }
    defer { try? input.close() }
    let total = Self.size(of: source)
    var start = offset
    if start > total { start = 0 }
    let sink = try Sink(path: partialPath, keeping: start, log: log, label: url.absoluteString)
    defer { sink.close() }
    try input.seek(toOffset: UInt64(start))
    sink.expected = total
    while true {
      let chunk = input.readData(ofLength: 1 << 20)
      if chunk.isEmpty { break }
      try sink.append(chunk)
    }
    return .complete(sink.written, sink.finishHash())
  }

  // MARK: - http(s)://

  func fetch(from offset: Int64) throws -> Transfer.Ending {
    let sink = try Sink(path: partialPath, keeping: offset, log: log, label: url.absoluteString)
    defer { sink.close() }
    var request = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: timeout)
    if offset > 0 { request.setValue("bytes=\(offset)-", forHTTPHeaderField: "Range") }
    request.setValue("identity", forHTTPHeaderField: "Accept-Encoding")
    let transfer = Transfer(sink: sink, offset: offset)
    let configuration = URLSessionConfiguration.ephemeral
    configuration.timeoutIntervalForRequest = timeout
    let queue = OperationQueue()
    queue.maxConcurrentOperationCount = 1
    let session = URLSession(configuration: configuration, delegate: transfer, delegateQueue: queue)
    session.dataTask(with: request).resume()
    transfer.finished.wait()
    session.finishTasksAndInvalidate()
    return transfer.ending(url: url)
  }

  // MARK: - helpers

  static func size(of path: String) -> Int64 {
    var info = stat()
    return stat(path, &info) == 0 ? Int64(info.st_size) : 0
  }

  static func sha256(ofFile path: String) throws -> String {
    guard let handle = FileHandle(forReadingAtPath: path) else { throw WorkerError("cannot read \(path)") }
    defer { try? handle.close() }
    var hash = hashing(handle, upTo: nil)
    return hash.finalize()
  }

  /// The hash of a handle's bytes from where it stands, up to `limit` bytes.
  static func hashing(_ handle: FileHandle, upTo limit: Int64?) -> SHA256 {
    var hash = SHA256()
    var remaining = limit ?? Int64.max
    while remaining > 0 {
      let chunk = handle.readData(ofLength: Int(min(Int64(1 << 20), remaining)))
      if chunk.isEmpty { break }
      hash.update(chunk)
      remaining -= Int64(chunk.count)
    }
    return hash
  }

  static func seconds(_ value: TimeInterval) -> String { String(format: "%.1f s", value) }

  static func bytes(_ value: Int64) -> String {
    let mebibytes = Double(value) / 1_048_576
    return mebibytes >= 1 ? String(format: "%.1f MiB", mebibytes) : "\(value) bytes"
  }
}

/// The `.part` file, hashed as it grows (a resumed part is hashed once from disk first),
/// with a progress line at most every two seconds.
final class Sink {
  let path: String
  let handle: FileHandle
  let log: (String) -> Void
  let label: String
  var hash = SHA256()
  var written: Int64
  var expected: Int64?
  let started = Date()
  let startedAt: Int64
  var lastReport = Date()
  var failure: String?

  init(path: String, keeping offset: Int64, log: @escaping (String) -> Void, label: String) throws {
    self.path = path
    self.log = log
    self.label = label
    if !FileManager.default.fileExists(atPath: path) {
      guard FileManager.default.createFile(atPath: path, contents: nil) else {
        throw WorkerError("download: cannot create \(path): \(String(cString: strerror(errno)))")
      }
    }
    guard let handle = FileHandle(forUpdatingAtPath: path) else { throw WorkerError("download: cannot open \(path)") }
    self.handle = handle
    written = 0
    startedAt = offset
    try restart(keeping: offset)
  }

  /// Keep the first `offset` bytes (hashing them) and drop anything after.
  func restart(keeping offset: Int64) throws {
    try handle.truncate(atOffset: UInt64(offset))
    try handle.seek(toOffset: 0)
    hash = Downloader.hashing(handle, upTo: offset)
    try handle.seekToEnd()
    written = offset
  }

  func append(_ data: Data) throws {
    do {
      try handle.write(contentsOf: data)
    } catch {
      throw WorkerError("download: cannot write \(path): \(error.localizedDescription)")
    }
    hash.update(data)
    written += Int64(data.count)
    if Date().timeIntervalSince(lastReport) >= 2 { report() }
  }

  func report() {
    lastReport = Date()
    let elapsed = max(Date().timeIntervalSince(started), 0.001)
    let rate = Double(written - startedAt) / elapsed
    var line = "download: \(Downloader.bytes(written))"
    if let expected, expected > 0 {
      line += " of \(Downloader.bytes(expected)) (\(written * 100 / expected)%)"
      if rate > 0 { line += ", \(Downloader.seconds(Double(expected - written) / rate)) left" }
    }
    line += String(format: ", %.1f MiB/s", rate / 1_048_576)
    log(line)
  }

  func finishHash() -> String { hash.finalize() }

  func close() { try? handle.close() }
}

/// URLSession's delegate for one request: streams 2xx bodies into the sink, reads the
/// status and ranges, and says how the attempt ended. Non-2xx bodies are drained, never
/// cancelled: on Linux a cancelled task's completion did not always arrive.
final class Transfer: NSObject, URLSessionDataDelegate, @unchecked Sendable {
  enum Ending: Equatable {
    case complete(Int64, String)
    case retry(String)
    case fatal(String)
  }

  let sink: Sink
  let offset: Int64
  let finished = DispatchSemaphore(value: 0)
  var status = 0
  var accepted = false
  var expectedEnd: Int64?
  var verdict: Ending?
  var transportError: (any Error)?

  init(sink: Sink, offset: Int64) {
    self.sink = sink
    self.offset = offset
  }

  func urlSession(
    _ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
    completionHandler: @escaping @Sendable (URLSession.ResponseDisposition) -> Void
  ) {
    let http = response as? HTTPURLResponse
    status = http?.statusCode ?? 0
    let length = response.expectedContentLength
    do {
      switch status {
      case 206:
        let range = http?.value(forHTTPHeaderField: "Content-Range") ?? ""
        if let (start, total) = Self.parseContentRange(range), start == offset {
          expectedEnd = total ?? (length >= 0 ? offset + length : nil)
          accepted = true
        } else {
          // A range we did not ask for: start over rather than splice the wrong bytes.
          try sink.restart(keeping: 0)
          verdict = .retry("the server answered Range \(offset)- with '\(range)'")
        }
      case 200..<300:
        if offset > 0 {
          sink.log("download: the server ignores Range; starting over")
          try sink.restart(keeping: 0)
        }
        expectedEnd = length >= 0 ? length : nil
        accepted = true
      case 416:
        let range = http?.value(forHTTPHeaderField: "Content-Range") ?? ""
        if let total = Self.parseUnsatisfiedRange(range), total == offset {
          verdict = .complete(sink.written, sink.finishHash())
        } else {
          try sink.restart(keeping: 0)
          verdict = .retry("HTTP 416 for a partial file of \(offset) bytes; starting over")
        }
      case 408, 429, 500..<600:
        verdict = .retry("HTTP \(status) \(HTTPURLResponse.localizedString(forStatusCode: status))")
      default:
        verdict = .fatal("HTTP \(status) \(HTTPURLResponse.localizedString(forStatusCode: status)) for \(response.url?.absoluteString ?? "the URL")")
      }
    } catch {
      verdict = .fatal("\(error)")
    }
    sink.expected = expectedEnd
    completionHandler(.allow)
  }

  func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
    guard accepted, sink.failure == nil else { return }
    do {
      try sink.append(data)
    } catch {
      sink.failure = "\(error)"
    }
  }

  func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
    transportError = error
    finished.signal()
  }

  func ending(url: URL) -> Ending {
    if let failure = sink.failure { return .fatal(failure) }
    if let verdict { return verdict }
    if let transportError {
      return .retry("\((transportError as NSError).localizedDescription) (\(url.absoluteString))")
    }
    guard accepted else { return .retry("no response from \(url.absoluteString)") }
    if let expectedEnd, sink.written != expectedEnd {
      return .retry("the transfer stopped at byte \(sink.written) of \(expectedEnd)")
    }
    if sink.written - offset > 0 || expectedEnd != nil { sink.report() }
    return .complete(sink.written, sink.finishHash())
  }

  /// `bytes START-END/TOTAL` (TOTAL may be `*`): the start and the total if known.
  static func parseContentRange(_ text: String) -> (Int64, Int64?)? {
    let parts = text.trimmingCharacters(in: .whitespaces).split(separator: " ", maxSplits: 1)
    guard parts.count == 2, parts[0].lowercased() == "bytes" else { return nil }
    let spanAndTotal = parts[1].split(separator: "/")
    guard spanAndTotal.count == 2, let dash = spanAndTotal[0].firstIndex(of: "-"),
      let start = Int64(spanAndTotal[0][..<dash])
    else { return nil }
    return (start, Int64(spanAndTotal[1]))
  }

  /// `bytes */TOTAL`, sent with 416.
  static func parseUnsatisfiedRange(_ text: String) -> Int64? {
    guard let slash = text.lastIndex(of: "/") else { return nil }
    return Int64(text[text.index(after: slash)...])
  }
}
