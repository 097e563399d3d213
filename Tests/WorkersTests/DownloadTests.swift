import Foundation
import TestSizes
import Testing
import Workers

/// Starts Support/range_server.py on a loopback port for one test and stops it after.
final class RangeServer {
  let process = Process()
  /// The server's stdin: closed when this process dies, which ends the server too.
  let lifeline = Pipe()
  let port: Int
  let root: String

  init() throws {
    root = try scratch()
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Support/range_server.py").path
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", script, root]
    let output = Pipe()
    process.standardOutput = output
    process.standardInput = lifeline
    process.standardError = FileHandle.nullDevice
    try process.run()
    var line = Data()
    while !line.contains(UInt8(ascii: "\n")) {
      let byte = output.fileHandleForReading.readData(ofLength: 1)
      guard !byte.isEmpty else { throw WorkerError("range_server.py did not start") }
      line.append(byte)
    }
    port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
  }

  // No waitUntilExit: inside a Swift Testing task it waited on a run loop that never
  // turned. Foundation reaps the child itself.
  deinit { kill(process.processIdentifier, SIGKILL) }

  func url(_ path: String) -> URL { URL(string: "http://127.0.0.1:\(port)/\(path)")! }

  /// A file of pseudo-random bytes (not compressible, not periodic) and its SHA-256.
  func publish(_ name: String, size: Int) throws -> (Data, String) {
    guard let random = FileHandle(forReadingAtPath: "/dev/urandom") else { throw WorkerError("cannot read /dev/urandom") }
    defer { try? random.close() }
    let data = random.readData(ofLength: size)
    try data.write(to: URL(fileURLWithPath: "\(root)/\(name)"))
    var hash = SHA256()
    hash.update(data)
    return (data, hash.finalize())
  }
}

final class LockedLines: @unchecked Sendable {
  private let lock = NSLock()
  private var lines: [String] = []
  func append(_ line: String) { lock.withLock { lines.append(line) } }
  var all: [String] { lock.withLock { lines } }
}

@Suite(.tags(.large), .serialized) struct DownloadTests {
  func downloader(_ url: URL, to path: String, sha256: String? = nil, attempts: Int = 4) throws -> Downloader {
    var downloader = try Downloader(url: url, destination: path, expectedSHA256: sha256, log: { _ in })
    downloader.attempts = attempts
    downloader.firstBackoff = 0.05
    downloader.timeout = 10
    return downloader
  }

  @Test func aDroppedConnectionResumesWithRangeAndTheChecksumHolds() throws {
    let server = try RangeServer()
    let (data, sum) = try server.publish("a.bin", size: 700_000)
    let target = try scratch() + "/raw/a.bin"
    let outcome = try downloader(server.url("drop/123457/a.bin"), to: target, sha256: sum).run()
    #expect(outcome.attemptsUsed == 2)
    #expect(outcome.sha256 == sum)
    #expect(try Data(contentsOf: URL(fileURLWithPath: target)) == data)
    #expect(!FileManager.default.fileExists(atPath: target + ".part"))
  }

  /// Many times the writer's buffers (4 x 1 MiB), dropped mid-buffer: the bytes the writer
  /// had not yet written when the connection broke are on disk before the resume is hashed.
  @Test func aLargeDownloadDroppedMidBufferResumesToTheSameBytes() throws {
    let server = try RangeServer()
    let (data, sum) = try server.publish("big.bin", size: 9 << 20 | 12345)
    let target = try scratch() + "/big.bin"
    let outcome = try downloader(server.url("drop/\(5 << 20 | 777)/big.bin"), to: target, sha256: sum).run()
    #expect(outcome.attemptsUsed == 2)
    #expect(outcome.sha256 == sum)
    #expect(try Data(contentsOf: URL(fileURLWithPath: target)) == data)
    let copy = try scratch() + "/big.bin"
    #expect(try downloader(URL(fileURLWithPath: "\(server.root)/big.bin"), to: copy, sha256: sum).run().sha256 == sum)
    #expect(try Data(contentsOf: URL(fileURLWithPath: copy)) == data)
  }

  /// A disk that refuses the bytes (the part file is /dev/full): the writer thread's failure
  /// ends the transfer with the reason, not a hang, a crash or a file under the final name.
  @Test(arguments: ["http", "file"])
  func aWriteThatFailsEndsTheDownloadWithItsReason(scheme: String) throws {
    let server = try RangeServer()
    let (_, sum) = try server.publish("full.bin", size: 6 << 20)
    let directory = try scratch()
    let target = "\(directory)/full.bin"
    try FileManager.default.createSymbolicLink(atPath: target + ".part", withDestinationPath: "/dev/full")
    let url = scheme == "http" ? server.url("files/full.bin") : URL(fileURLWithPath: "\(server.root)/full.bin")
    do {
      _ = try downloader(url, to: target, sha256: sum).run()
      Issue.record("expected the write to /dev/full to fail")
    } catch let error as WorkerError {
      #expect(error.message == "download: cannot write \(target).part: No space left on device", "\(error.message)")
    }
    #expect(!FileManager.default.fileExists(atPath: target))
  }

  @Test func aPartFileFromAnEarlierRunIsResumedNotRefetched() throws {
    let server = try RangeServer()
    let (data, sum) = try server.publish("b.bin", size: 300_000)
    let target = try scratch() + "/b.bin"
    try data.prefix(100_000).write(to: URL(fileURLWithPath: target + ".part"))
    let outcome = try downloader(server.url("files/b.bin"), to: target, sha256: sum).run()
    #expect(outcome.resumedFrom == 100_000)
    #expect(try Data(contentsOf: URL(fileURLWithPath: target)) == data)
    // A server that ignores Range sends it all again; the part is restarted, not spliced.
    let other = try scratch() + "/b.bin"
    try Data(repeating: 7, count: 1000).write(to: URL(fileURLWithPath: other + ".part"))
    #expect(try downloader(server.url("norange/b.bin"), to: other, sha256: sum).run().sha256 == sum)
    // A part that is already complete gets 416 and is finished without a byte more.
    let complete = try scratch() + "/b.bin"
    try data.write(to: URL(fileURLWithPath: complete + ".part"))
    #expect(try downloader(server.url("files/b.bin"), to: complete, sha256: sum).run().sha256 == sum)
  }

  @Test func busyServersAreRetriedWithBackoff() throws {
    let server = try RangeServer()
    let (_, sum) = try server.publish("c.bin", size: 5000)
    let target = try scratch() + "/c.bin"
    #expect(try downloader(server.url("busy/2/c.bin"), to: target).run().attemptsUsed == 3)
    let again = try scratch() + "/c.bin"
    #expect(throws: WorkerError.self) { try downloader(server.url("busy/9/c.bin"), to: again, attempts: 2).run() }
    #expect(!FileManager.default.fileExists(atPath: again))
    _ = sum
  }

  @Test(arguments: [
    ("files/missing.bin", "HTTP 404"),
    ("files/d.bin#badsum", "checksum mismatch"),
  ])
  func badDownloadsFailClearlyAndLeaveNothingUnderTheFinalName(path: String, message: String) throws {
    let server = try RangeServer()
    let (_, sum) = try server.publish("d.bin", size: 4000)
    let directory = try scratch()
    let target = "\(directory)/d.bin"
    let wrong = String(sum.reversed())
    do {
      _ = try downloader(server.url(path), to: target, sha256: path.hasSuffix("badsum") ? wrong : nil).run()
      Issue.record("expected \(path) to fail")
    } catch let error as WorkerError {
      #expect(error.message.contains(message), "\(error.message)")
    }
    #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
  }

  @Test func anUnreachableHostGivesUpAfterTheAttempts() throws {
    let directory = try scratch()
    let lines = LockedLines()
    var subject = try downloader(URL(string: "http://127.0.0.1:1/x.bin")!, to: "\(directory)/x.bin", attempts: 3)
    subject.log = { lines.append($0) }
    subject.firstBackoff = 0.1
    do {
      _ = try subject.run()
      Issue.record("expected a failure")
    } catch let error as WorkerError {
      #expect(error.message.contains("giving up on http://127.0.0.1:1/x.bin after 3 attempts"), "\(error.message)")
    }
    // The waits between attempts double: backoff, announced in the log.
    let waits = lines.all.filter { $0.hasPrefix("download: attempt") }.map { String($0.prefix(while: { $0 != "(" })) }
    #expect(waits == ["download: attempt 2 of 3 in 0.1 s ", "download: attempt 3 of 3 in 0.2 s "], "\(lines.all)")
    #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
  }

  @Test func fileURLsAndExistingFilesAndBadArguments() throws {
    let source = try scratch() + "/e.bin"
    try Data("hello\n".utf8).write(to: URL(fileURLWithPath: source))
    let sum = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
    let target = try scratch() + "/e.bin"
    #expect(try downloader(URL(fileURLWithPath: source), to: target, sha256: sum).run().alreadyThere == false)
    #expect(try downloader(URL(fileURLWithPath: source), to: target, sha256: sum).run().alreadyThere == true)
    #expect(throws: WorkerError.self) { try downloader(URL(fileURLWithPath: source), to: target, sha256: String(repeating: "0", count: 64)).run() }
    #expect(throws: WorkerError.self) { try downloader(URL(string: "ftp://example.org/x")!, to: target) }
    #expect(throws: WorkerError.self) { try downloader(URL(fileURLWithPath: source), to: target, sha256: "abc") }
  }
}
