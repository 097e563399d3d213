public import Foundation
import CCurl

/// download: one URL (http, https or file) to a final path, through `<final>.part`.
/// A transfer that breaks resumes from the bytes already on disk (HTTP Range); transient
/// failures (connection errors, 408, 429, 5xx) are retried with exponential backoff; the
/// SHA-256 is computed while the bytes arrive and checked before the rename, so the final
/// name only ever holds a complete, verified file. HTTP(S) goes through libcurl, whose
/// buffers are written to the part file and hashed as they come, with no copy between.
public struct Downloader {
  public var url: URL
  public var destination: String
  public var expectedSHA256: String?
  public var attempts = 5
  public var firstBackoff: TimeInterval = 1
  public var timeout: TimeInterval = 60
  /// Download even when the destination is there with the expected sha256.
  public var force = false
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

  public static func parse(_ text: String) throws -> URL {
    guard let url = URL(string: text), url.scheme != nil else { throw WorkerError("download: '\(text)' is not a URL") }
    return url
  }

  /// `output` as given, else `<directory>/<the URL's file name>`.
  public static func destination(of url: URL, output: String?, directory: String?) throws -> String {
    if let output { return output }
    guard let directory else { throw WorkerError("download: give --to or --output, or set DATA_RAW") }
    let name = url.lastPathComponent
    guard !name.isEmpty, name != "/" else { throw WorkerError("download: \(url.absoluteString) names no file; give --output") }
    return "\(directory)/\(name)"
  }

  public func run() throws -> Outcome {
    // Up to date: the file is there with the expected sha256 (or, without one, is there).
    // A file with another sha256 (the data or the checksum changed) is fetched again and
    // replaced only once the new bytes are verified.
    if !force, FileManager.default.fileExists(atPath: destination) {
      let sum = try Self.sha256(ofFile: destination)
      if let expectedSHA256, sum != expectedSHA256 {
        log("download: \(destination) has sha256 \(sum), not the expected \(expectedSHA256); downloading it again")
      } else {
        let size = Self.size(of: destination)
        let checked = expectedSHA256 == nil ? "; no --sha256 to check it against" : ""
        log("up to date: download \(destination) (sha256 \(sum)\(checked); --force downloads again)")
        return Outcome(bytes: size, sha256: sum, attemptsUsed: 0, resumedFrom: 0, alreadyThere: true)
      }
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
        throw WorkerError(problem)
      }
    }
    removeEmptyPart()
    let kept = Self.size(of: partialPath)
    throw WorkerError("download: giving up on \(url.absoluteString) after \(attempts) attempts: \(lastProblem)\(kept > 0 ? "; \(kept) bytes kept in \(partialPath) for the next try" : "")")
  }

  /// A `.part` with bytes in it is kept for the next run to resume; an empty one is litter.
  func removeEmptyPart() {
    if FileManager.default.fileExists(atPath: partialPath), Self.size(of: partialPath) == 0 { unlink(partialPath) }
  }

  // MARK: - file://

  func copyFile(from offset: Int64) throws -> Transfer.Ending {
    let source = url.path
    let input = open(source, O_RDONLY)
    guard input >= 0 else { return .fatal("download: cannot read \(source) (\(url.absoluteString)): \(String(cString: strerror(errno)))") }
    defer { close(input) }
    let total = Self.size(of: source)
    let start = offset > total ? 0 : offset
    let sink = try Sink(path: partialPath, keeping: start, log: log, label: url.absoluteString)
    defer { sink.close() }
    guard lseek(input, off_t(start), SEEK_SET) == off_t(start) else { return .fatal("download: cannot seek in \(source)") }
    sink.expected = total
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
    defer { buffer.deallocate() }
    while true {
      let count = read(input, buffer.baseAddress, buffer.count)
      guard count >= 0 else { return .fatal("download: cannot read \(source): \(String(cString: strerror(errno)))") }
      if count == 0 { break }
      try sink.append(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
    }
    return .complete(sink.written, try sink.finishHash())
  }

  // MARK: - http(s)://

  func fetch(from offset: Int64) throws -> Transfer.Ending {
    let sink = try Sink(path: partialPath, keeping: offset, log: log, label: url.absoluteString)
    defer { sink.close() }
    return Transfer(sink: sink, offset: offset).perform(url: url.absoluteString, timeout: timeout)
  }

  // MARK: - helpers

  static func size(of path: String) -> Int64 {
    var info = stat()
    return stat(path, &info) == 0 ? Int64(info.st_size) : 0
  }

  static func sha256(ofFile path: String) throws -> String {
    let file = open(path, O_RDONLY)
    guard file >= 0 else { throw WorkerError("cannot read \(path): \(String(cString: strerror(errno)))") }
    defer { close(file) }
    var hash = try hashing(file, upTo: nil, path: path)
    return hash.finalize()
  }

  /// The hash of a file's bytes from its current offset, up to `limit` bytes.
  static func hashing(_ file: Int32, upTo limit: Int64?, path: String) throws -> SHA256 {
    var hash = SHA256()
    var remaining = limit ?? Int64.max
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
    defer { buffer.deallocate() }
    while remaining > 0 {
      let count = read(file, buffer.baseAddress, Int(min(Int64(buffer.count), remaining)))
      guard count >= 0 else { throw WorkerError("cannot read \(path): \(String(cString: strerror(errno)))") }
      if count == 0 { break }
      hash.update(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
      remaining -= Int64(count)
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
///
/// The thread that receives (libcurl's, or the file copy's) only copies each piece into a
/// 1 MiB buffer. Full buffers go, in order, to a second thread that writes them and updates
/// the hash, so the SHA-256 (0.2 s of CPU per 256 MiB) runs beside the transfer instead of
/// after each piece of it. At most `bufferCount` buffers are in flight: a disk slower than
/// the network holds the receiver back rather than filling memory.
final class Sink: @unchecked Sendable {
  static let bufferSize = 1 << 20
  static let bufferCount = 4

  let path: String
  let file: Int32
  let log: (String) -> Void
  let label: String
  var written: Int64 = 0
  var expected: Int64?
  let started = Date()
  let startedAt: Int64
  var lastReport = Date()
  /// A failure of the transfer (set by Transfer), as opposed to the writer's own.
  var failure: String?

  /// Touched by the writer while buffers are in flight, by the receiver only once it has
  /// waited for the writer (`drain`).
  private var hash = SHA256()
  private let writer = DispatchQueue(label: "ci-worker.download.writer")
  private let freeBuffers = DispatchSemaphore(value: Sink.bufferCount)
  private let buffers: [UnsafeMutableRawBufferPointer]
  /// Guards `free` (indices into `buffers`) and `writeFailure`, shared by both threads.
  private let lock = NSLock()
  private var free: [Int]
  private var writeFailure: String?
  /// The receiver's buffer being filled, and how much of it is.
  private var filling: Int?
  private var staged = 0

  init(path: String, keeping offset: Int64, log: @escaping (String) -> Void, label: String) throws {
    self.path = path
    self.log = log
    self.label = label
    file = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
    guard file >= 0 else { throw WorkerError("download: cannot create \(path): \(String(cString: strerror(errno)))") }
    buffers = (0..<Sink.bufferCount).map { _ in .allocate(byteCount: Sink.bufferSize, alignment: 16) }
    free = Array(buffers.indices)
    startedAt = offset
    try restart(keeping: offset)
  }

  /// Keep the first `offset` bytes (hashing them) and drop anything after.
  func restart(keeping offset: Int64) throws {
    drain()
    writeFailure = nil
    // Only a part longer than what is kept is truncated: ext4 flushes a file truncated to
    // zero when it is closed (auto_da_alloc), which cost a second per 256 MiB.
    var info = stat()
    let size = fstat(file, &info) == 0 ? Int64(info.st_size) : Int64.max
    guard size <= offset || ftruncate(file, off_t(offset)) == 0, lseek(file, 0, SEEK_SET) == 0 else {
      throw WorkerError("download: cannot truncate \(path): \(String(cString: strerror(errno)))")
    }
    hash = try Downloader.hashing(file, upTo: offset, path: path)
    lseek(file, 0, SEEK_END)
    written = offset
  }

  /// libcurl hands the body over 16 KiB at a time; the pieces are gathered to 1 MiB, so
  /// the part file gets one write(2) and the hash one update per MiB.
  func append(_ bytes: UnsafeRawBufferPointer) throws {
    var rest = bytes
    while !rest.isEmpty {
      let buffer = try bufferToFill()
      let count = min(rest.count, buffer.count - staged)
      UnsafeMutableRawBufferPointer(rebasing: buffer[staged..<(staged + count)])
        .copyMemory(from: UnsafeRawBufferPointer(rebasing: rest[..<count]))
      staged += count
      rest = UnsafeRawBufferPointer(rebasing: rest[count...])
      if staged == buffer.count { submit() }
    }
    written += Int64(bytes.count)
    if Date().timeIntervalSince(lastReport) >= 2 { report() }
  }

  /// The buffer being filled, else a free one (waiting for the writer to give one back).
  private func bufferToFill() throws -> UnsafeMutableRawBufferPointer {
    if let filling { return buffers[filling] }
    freeBuffers.wait()
    lock.lock()
    let index = free.removeLast()
    let failed = writeFailure
    lock.unlock()
    filling = index
    staged = 0
    if let failed { throw WorkerError(failed) }
    return buffers[index]
  }

  /// Hand the filled part of the current buffer to the writer.
  private func submit() {
    guard let index = filling else { return }
    let count = staged
    filling = nil
    staged = 0
    writer.async {
      if count > 0 { self.store(UnsafeRawBufferPointer(rebasing: self.buffers[index][..<count])) }
      self.lock.lock()
      self.free.append(index)
      self.lock.unlock()
      self.freeBuffers.signal()
    }
  }

  /// On the writer: one buffer to the part file and the hash, unless a write failed
  /// already (the bytes after a lost one would not be the file's).
  private func store(_ bytes: UnsafeRawBufferPointer) {
    lock.lock()
    let failedBefore = writeFailure != nil
    lock.unlock()
    guard !failedBefore else { return }
    var done = 0
    while done < bytes.count {
      let count = write(file, bytes.baseAddress! + done, bytes.count - done)
      if count < 0 && errno == EINTR { continue }
      guard count > 0 else {
        let reason = "download: cannot write \(path): \(String(cString: strerror(errno)))"
        lock.lock()
        writeFailure = reason
        lock.unlock()
        return
      }
      done += count
    }
    hash.update(bytes)
  }

  /// Everything appended handed to the writer and written.
  private func drain() {
    submit()
    writer.sync {}
  }

  /// Everything appended written; the writer's failure, if it had one.
  func flush() throws {
    drain()
    lock.lock()
    let failed = writeFailure
    lock.unlock()
    if let failed { throw WorkerError(failed) }
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

  /// The SHA-256 of everything appended (the staged tail is written first).
  func finishHash() throws -> String {
    try flush()
    return hash.finalize()
  }

  /// Whatever arrived stays in the part for the next attempt to resume from.
  func close() {
    drain()
    _ = Glibc.close(file)
  }

  /// No writer block is left by now: each one holds the sink until it has run.
  deinit { buffers.forEach { $0.deallocate() } }
}

/// One HTTP(S) request through libcurl's easy interface: reads the final response's status
/// line and headers, streams a 2xx body into the sink, and says how the attempt ended.
final class Transfer {
  enum Ending: Equatable {
    case complete(Int64, String)
    case retry(String)
    /// The whole message, "download: ..." included.
    case fatal(String)
  }

  let sink: Sink
  let offset: Int64
  /// The last response's status, reason phrase and headers (a redirect's are replaced by
  /// the next response's).
  var status = 0
  var reason = ""
  var contentRange = ""
  var contentLength: Int64?
  /// Whether the status has been acted on (at the first body byte, or at the end).
  var decided = false
  var accepted = false
  var expectedEnd: Int64?
  var verdict: Ending?

  /// libcurl reads its environment and sets up OpenSSL once per process, before any handle.
  static let globalSetup: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

  init(sink: Sink, offset: Int64) {
    self.sink = sink
    self.offset = offset
  }

  func perform(url: String, timeout: TimeInterval) -> Ending {
    _ = Transfer.globalSetup
    guard let handle = curl_easy_init() else { return .fatal("download: libcurl could not start a transfer") }
    defer { curl_easy_cleanup(handle) }
    var message = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    let seconds = max(1, Int(timeout.rounded(.up)))
    let context = Unmanaged.passUnretained(self).toOpaque()
    let code = message.withUnsafeMutableBufferPointer { errors -> CURLcode in
      ccurl_setopt_string(handle, CURLOPT_URL, url)
      ccurl_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https")
      ccurl_setopt_string(handle, CURLOPT_REDIR_PROTOCOLS_STR, "http,https")
      ccurl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 1)
      ccurl_setopt_long(handle, CURLOPT_MAXREDIRS, 10)
      // No signals (libcurl's DNS timeouts would use SIGALRM), no compression asked for:
      // the bytes on disk are the bytes the checksum is of.
      ccurl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
      ccurl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT, seconds)
      // --timeout is a stall limit, not a limit on the whole transfer: less than a byte a
      // second for that long is a dropped connection.
      ccurl_setopt_long(handle, CURLOPT_LOW_SPEED_LIMIT, 1)
      ccurl_setopt_long(handle, CURLOPT_LOW_SPEED_TIME, seconds)
      // 512 KiB reads: fewer callbacks, each one write(2) and one hash update.
      ccurl_setopt_long(handle, CURLOPT_BUFFERSIZE, 512 << 10)
      ccurl_setopt_string(handle, CURLOPT_USERAGENT, "ci-worker download (libcurl)")
      if offset > 0 { ccurl_setopt_string(handle, CURLOPT_RANGE, "\(offset)-") }
      ccurl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errors.baseAddress)
      ccurl_setopt_callback(handle, CURLOPT_HEADERFUNCTION) { data, size, count, context in
        let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
        transfer.header(UnsafeRawBufferPointer(start: data, count: size * count))
        return size * count
      }
      ccurl_setopt_pointer(handle, CURLOPT_HEADERDATA, context)
      ccurl_setopt_callback(handle, CURLOPT_WRITEFUNCTION) { data, size, count, context in
        let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
        return transfer.body(UnsafeRawBufferPointer(start: data, count: size * count))
      }
      ccurl_setopt_pointer(handle, CURLOPT_WRITEDATA, context)
      return curl_easy_perform(handle)
    }
    if let failure = sink.failure { return .fatal(failure) }
    if !decided && status != 0 { decide() }
    if let verdict { return verdict }
    guard code == CURLE_OK else {
      let detail = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
      return .retry("\(detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail) (\(url))")
    }
    guard accepted else { return .retry("no response from \(url)") }
    if let expectedEnd, sink.written != expectedEnd {
      return .retry("the transfer stopped at byte \(sink.written) of \(expectedEnd)")
    }
    if sink.written - offset > 0 || expectedEnd != nil { sink.report() }
    do {
      return .complete(sink.written, try sink.finishHash())
    } catch {
      return .fatal(WorkerError.oneLine(error))
    }
  }

  /// One header line; a status line starts a new response (after a redirect or a 100).
  func header(_ bytes: UnsafeRawBufferPointer) {
    let line = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    if line.hasPrefix("HTTP/") {
      let parts = line.split(separator: " ", maxSplits: 2)
      status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
      reason = parts.count > 2 ? String(parts[2]) : ""
      contentRange = ""
      contentLength = nil
    } else if let colon = line.firstIndex(of: ":") {
      let name = line[..<colon].lowercased()
      let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
      if name == "content-range" { contentRange = value }
      if name == "content-length" { contentLength = Int64(value) }
    }
  }

  /// A piece of the body: the part file's if the response is the one asked for; any other
  /// body ends the transfer (returning less than given makes libcurl stop).
  func body(_ bytes: UnsafeRawBufferPointer) -> Int {
    if !decided { decide() }
    guard accepted, sink.failure == nil else { return 0 }
    do {
      try sink.append(bytes)
    } catch {
      sink.failure = WorkerError.oneLine(error)
      return 0
    }
    return bytes.count
  }

  /// What the final response's status means for this attempt.
  func decide() {
    decided = true
    let statusText = "HTTP \(status)\(reason.isEmpty ? "" : " " + reason)"
    do {
      switch status {
      case 206:
        if let (start, total) = Self.parseContentRange(contentRange), start == offset {
          expectedEnd = total ?? contentLength.map { offset + $0 }
          accepted = true
        } else {
          // A range we did not ask for: start over rather than splice the wrong bytes.
          try sink.restart(keeping: 0)
          verdict = .retry("the server answered Range \(offset)- with '\(contentRange)'")
        }
      case 200..<300:
        if offset > 0 {
          sink.log("download: the server ignores Range; starting over")
          try sink.restart(keeping: 0)
        }
        expectedEnd = contentLength
        accepted = true
      case 416:
        if let total = Self.parseUnsatisfiedRange(contentRange), total == offset {
          verdict = .complete(sink.written, try sink.finishHash())
        } else {
          try sink.restart(keeping: 0)
          verdict = .retry("HTTP 416 for a partial file of \(offset) bytes; starting over")
        }
      case 408, 429, 500..<600:
        verdict = .retry(statusText)
      default:
        verdict = .fatal("download: \(statusText) for \(sink.label)")
      }
    } catch {
      verdict = .fatal(WorkerError.oneLine(error))
    }
    sink.expected = expectedEnd
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
