import Foundation
import SVD
import Testing
import Workers

func scratch() throws -> String {
  let path = NSTemporaryDirectory() + "workers-" + UUID().uuidString
  try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  return path
}

@Suite struct SVDWorkerTests {
  func map(_ directory: String, seeds: String, task: Int, tasks: Int, nrow: Int = 60, ncol: Int = 40) throws -> (Int, Int) {
    try SVDMap(nrow: nrow, ncol: ncol, seeds: SeedList.parse(seeds), outputDirectory: directory, task: task, tasks: tasks, log: { _ in }).run()
  }

  @Test func seedsAreSharedAcrossTasksAndRunsResume() throws {
    let directory = try scratch()
    #expect(try map(directory, seeds: "0-9", task: 0, tasks: 3) == (4, 0))
    #expect(try map(directory, seeds: "0-9", task: 0, tasks: 3) == (0, 4))  // resumed: nothing to do
    #expect(try map(directory, seeds: "0-9", task: 1, tasks: 3) == (4, 0))
    #expect(try map(directory, seeds: "0-9", task: 2, tasks: 3) == (2, 0))
    #expect(SeedList.share(Array(0...9), task: 2, of: 3) == [8, 9])
  }

  @Test func mapAndReduceMatchNumpy() throws {
    let directory = try scratch()
    _ = try map(directory, seeds: "0-11", task: 0, tasks: 2)
    _ = try map(directory, seeds: "0-11", task: 1, tasks: 2)
    let result = try SVDReduce.run(
      shards: ["\(directory)/shard-0.sqlite", "\(directory)/shard-1.sqlite"], nrow: 60, ncol: 40, expected: Array(0...11))
    #expect(result.blocks == 12)
    let lines = try numpy(
      """
      import numpy as np
      nrow, ncol = 60, 40
      u = (-1.0) ** np.arange(nrow) / np.sqrt(nrow)
      v = (-1.0) ** (np.arange(ncol) + 1) / np.sqrt(ncol)
      rows = []
      for s in range(12):
          X = 3 * np.outer(u, v) + np.random.default_rng(1 + 10000 * s).standard_normal((nrow, ncol)) / 1000
          rows.append(np.linalg.svd(X)[2][0])
      err = lambda e: min(np.linalg.norm(e - v), np.linalg.norm(e + v))
      vt = np.linalg.svd(np.vstack(rows))[2][0]
      print(repr(float(err(vt))), repr(float(np.mean([err(r) for r in rows]))))
      """, [])
    let expected = try #require(lines.first?.split(separator: " ").compactMap { Double($0) })
    try #require(expected.count == 2)
    #expect(abs(result.reduceError - expected[0]) < 1e-10)
    #expect(abs(result.meanSingleBlockError - expected[1]) < 1e-10)
    #expect(result.reduceError < result.meanSingleBlockError)
  }

  @Test func missingAndDuplicatedSeedsAreNamed() throws {
    let directory = try scratch()
    _ = try map(directory, seeds: "0-5", task: 0, tasks: 1)
    #expect(throws: WorkerError("seeds missing from the shards: 6-9")) {
      try SVDReduce.run(shards: ["\(directory)/shard-0.sqlite"], nrow: 60, ncol: 40, expected: Array(0...9))
    }
    let other = try scratch()
    _ = try map(other, seeds: "4-7", task: 0, tasks: 1)
    #expect {
      try SVDReduce.run(shards: ["\(directory)/shard-0.sqlite", "\(other)/shard-0.sqlite"], nrow: 60, ncol: 40, expected: nil)
    } throws: { "\($0)".hasPrefix("seeds stored more than once: 4-5") }
  }

  @Test func aCorruptShardIsNamed() throws {
    let directory = try scratch()
    let bad = "\(directory)/shard-9.sqlite"
    try "this is not a database, just text that was truncated".write(toFile: bad, atomically: true, encoding: .utf8)
    #expect {
      try SVDReduce.run(shards: [bad], nrow: 60, ncol: 40, expected: nil)
    } throws: { "\($0)".hasPrefix("\(bad): not a readable svd-map shard") }
  }

  @Test(arguments: ["", "5-3", "a-b", "1,,2", "-4"])
  func badSeedListsAreOneLine(text: String) {
    #expect(throws: WorkerError.self) { try SeedList.parse(text) }
  }
}
