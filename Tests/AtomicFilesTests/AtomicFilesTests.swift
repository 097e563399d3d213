import AtomicFiles
import Foundation
import TestSizes
import Testing

@Suite(.tags(.medium)) struct AtomicFilesTests {
  let directory = NSTemporaryDirectory() + "atomic-" + UUID().uuidString

  func read(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

  @Test func aPlantedSymlinkAtTheTemporaryNameIsNeverWrittenThrough() throws {
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let victim = "\(directory)/victim"
    try "precious\n".write(toFile: victim, atomically: false, encoding: .utf8)
    // The name the writer will use, planted before it runs (the old writers opened it with
    // O_TRUNC or FileManager.createFile and wrote through the link).
    try FileManager.default.createSymbolicLink(atPath: "\(directory)/.out.tmp-\(getpid())", withDestinationPath: victim)
    try AtomicFiles.write("new\n", to: "\(directory)/out", mode: 0o600)
    #expect(read(victim) == "precious\n")
    #expect(read("\(directory)/out") == "new\n")
    let attributes = try FileManager.default.attributesOfItem(atPath: "\(directory)/out")
    #expect((attributes[.posixPermissions] as? Int) == 0o600)
  }

  /// Reading what a job's processes can replace: a FIFO (which blocked open(2)) or a
  /// symlink is no file; a regular file reads as it is.
  @Test func onlyARegularFileIsReadAndAFIFODoesNotBlock() throws {
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    #expect(mkfifo("\(directory)/fifo", 0o600) == 0)
    try "text\n".write(toFile: "\(directory)/plain", atomically: false, encoding: .utf8)
    try FileManager.default.createSymbolicLink(atPath: "\(directory)/link", withDestinationPath: "\(directory)/plain")
    #expect(AtomicFiles.openRegularFile("\(directory)/fifo") == -1)
    #expect(AtomicFiles.readRegularFile("\(directory)/link") == nil)
    #expect(AtomicFiles.readRegularFile("\(directory)/plain") == Data("text\n".utf8))
    #expect(AtomicFiles.readRegularFile("\(directory)/plain", atMost: 2) == Data("te".utf8))
    #expect(throws: AtomicFiles.WriteError.self) {
      try AtomicFiles.copy("\(directory)/fifo", to: "\(directory)/out/copy", below: self.directory)
    }
  }

  /// The attack on a checkout: a directory on the way is a symlink out of it, planted at
  /// the top or deeper down. The old `makeDirectories: true` wrote through both.
  @Test func belowARootNoSymlinkedDirectoryOnTheWayIsFollowed() throws {
    let root = "\(directory)/root"
    let elsewhere = "\(directory)/elsewhere"
    for path in [root + "/project/.ci-slurm", elsewhere] {
      try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    defer { try? FileManager.default.removeItem(atPath: directory) }
    try FileManager.default.createSymbolicLink(atPath: "\(root)/project/.ci-slurm/logs", withDestinationPath: elsewhere)
    try FileManager.default.createSymbolicLink(atPath: "\(root)/link", withDestinationPath: elsewhere)
    for path in ["\(root)/project/.ci-slurm/logs/job/job.log", "\(root)/link/junit.xml"] {
      #expect(throws: AtomicFiles.WriteError.self) { try AtomicFiles.write(Data("x".utf8), to: path, below: root) }
    }
    #expect(throws: AtomicFiles.WriteError(path: "\(root)/../escape", reason: "not a plain path below \(root)")) {
      try AtomicFiles.write(Data("x".utf8), to: "\(root)/../escape", below: root)
    }
    #expect(try FileManager.default.contentsOfDirectory(atPath: elsewhere).isEmpty)
    // Without a planted link the directories are made and the file written.
    try AtomicFiles.write(Data("ok\n".utf8), to: "\(root)/project/.ci-slurm/junit.xml", below: root)
    #expect(read("\(root)/project/.ci-slurm/junit.xml") == "ok\n")
  }

  @Test func aCopyIsByteForByteAChunkAtATime() throws {
    let root = "\(directory)/root"
    try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    // Over two chunks, with bytes that are no UTF-8.
    let source = Data((0..<(3 << 20) + 17).map { UInt8(truncatingIfNeeded: $0 &* 31) })
    try source.write(to: URL(fileURLWithPath: "\(directory)/source"))
    try AtomicFiles.copy("\(directory)/source", to: "\(root)/logs/a/task-1.log", below: root)
    #expect(try Data(contentsOf: URL(fileURLWithPath: "\(root)/logs/a/task-1.log")) == source)
  }

  @Test func aFailedSetLeavesEveryOldFileAsItWas() throws {
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    try "old\n".write(toFile: "\(directory)/a", atomically: false, encoding: .utf8)
    #expect(throws: AtomicFiles.WriteError.self) {
      try AtomicFiles.write([(Data("new\n".utf8), "\(directory)/a"), (Data("x".utf8), "\(directory)/missing/b")])
    }
    #expect(read("\(directory)/a") == "old\n")
    #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["a"])
  }

  @Test func theErrorIsOneLineWithThePathAndTheOSReason() {
    #expect(throws: AtomicFiles.WriteError(path: "/proc/nope/x", reason: "No such file or directory")) {
      try AtomicFiles.write("x", to: "/proc/nope/x")
    }
    #expect(AtomicFiles.WriteError(path: "/p", reason: "Permission denied").description == "cannot write /p: Permission denied")
  }
}
