import Foundation
import SVD
import TestSizes
import Testing
import Workers

func scratch() throws -> String {
  let path = NSTemporaryDirectory() + "workers-" + UUID().uuidString
  try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  return path
}

@Suite(.tags(.large)) struct SVDWorkerTests {
  func map(_ directory: String, seeds: String, task: Int, tasks: Int, nrow: Int = 60, ncol: Int = 40, gram: Bool = false) throws -> (Int, Int) {
    var map = try SVDMap(nrow: nrow, ncol: ncol, seeds: SeedList.parse(seeds), outputDirectory: directory, task: task, tasks: tasks, log: { _ in })
    map.keepGram = gram
    return try map.run()
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
    _ = try map(directory, seeds: "0-11", task: 0, tasks: 2, gram: true)
    // Resumed halfway: the Gram sum must still count each seed once.
    _ = try map(directory, seeds: "6-8", task: 1, tasks: 2, gram: true)  // a subset of task 1's 6-11
    _ = try map(directory, seeds: "0-11", task: 1, tasks: 2, gram: true)
    let result = try SVDReduce.run(
      shards: ["\(directory)/shard-0.sqlite", "\(directory)/shard-1.sqlite"], nrow: 60, ncol: 40, expected: Array(0...11),
      exact: true)
    #expect(result.blocks == 12)
    #expect(result.errorByBlocks.map(\.blocks) == [1, 2, 5, 10, 12])
    #expect(result.vAlignments.count == 12)
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
      Xs = []
      for s in range(12):
          Xs.append(3 * np.outer(u, v) + np.random.default_rng(1 + 10000 * s).standard_normal((nrow, ncol)) / 1000)
      vt = np.linalg.svd(np.vstack(rows))[2][0]
      exact = np.linalg.svd(np.vstack(Xs))[2][0]
      five = np.linalg.svd(np.vstack(rows[:5]))[2][0]
      print(repr(float(err(vt))), repr(float(np.mean([err(r) for r in rows]))), repr(float(err(exact))), repr(float(err(five))))
      """, [])
    let expected = try #require(lines.first?.split(separator: " ").compactMap { Double($0) })
    try #require(expected.count == 4)
    #expect(abs(result.reduceError - expected[0]) < 1e-10)
    #expect(abs(result.meanSingleBlockError - expected[1]) < 1e-10)
    #expect(abs(try #require(result.exactError) - expected[2]) < 1e-9)
    #expect(abs(result.errorByBlocks[2].error - expected[3]) < 1e-10)
    #expect(result.reduceError < result.meanSingleBlockError)
    #expect(result.errorByBlocks.last?.error == result.reduceError)
    // The course's full dgesdd, map and reduce, gives the same errors (10 seeds' worth of
    // shards computed again with --method full).
    let fullDirectory = try scratch()
    var fullMap = try SVDMap(nrow: 60, ncol: 40, seeds: SeedList.parse("0-11"), outputDirectory: fullDirectory, task: 0, tasks: 1, log: { _ in })
    fullMap.method = .full
    try fullMap.run()
    let full = try SVDReduce.run(shards: ["\(fullDirectory)/shard-0.sqlite"], nrow: 60, ncol: 40, expected: nil, method: .full)
    for (ours, theirs) in zip(result.errorByBlocks, full.errorByBlocks) {
      #expect(ours.blocks == theirs.blocks)
      #expect(abs(ours.error - theirs.error) <= 1e-10 * theirs.error)
    }
    for (ours, theirs) in zip(result.vAlignments, full.vAlignments) { #expect(abs(ours - theirs) < 1e-12) }
    // The same shards as CSV reduce to the same answer.
    let csvDirectory = try scratch()
    for task in 0..<2 {
      let store = try ResultStore(readingFrom: "\(directory)/shard-\(task).sqlite", table: SVDMap.table(nrow: 60, ncol: 40))
      try SVDMap.exportCSV(from: store, to: "\(csvDirectory)/shard-\(task).csv")
    }
    let fromCSV = try SVDReduce.run(
      shards: ["\(csvDirectory)/shard-0.csv", "\(csvDirectory)/shard-1.csv"], nrow: 60, ncol: 40, expected: Array(0...11))
    #expect(fromCSV.reduceError == result.reduceError)
    #expect(fromCSV.vAlignments == result.vAlignments)
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

  @Test func aRunWithAnotherSplitSkipsSeedsOtherShardsHoldAndReduceKeepsToSeeds() throws {
    let directory = try scratch()
    _ = try map(directory, seeds: "0-5", task: 0, tasks: 2)
    _ = try map(directory, seeds: "0-5", task: 1, tasks: 2)
    // One task over 0-9: 0-2 are its own, 3-5 are in shard-1, only 6-9 are new.
    #expect(try map(directory, seeds: "0-9", task: 0, tasks: 1) == (4, 6))
    let shards = ["\(directory)/shard-0.sqlite", "\(directory)/shard-1.sqlite"]
    #expect(try SVDReduce.run(shards: shards, nrow: 60, ncol: 40, expected: nil).blocks == 10)
    let some = try SVDReduce.run(shards: shards, nrow: 60, ncol: 40, expected: Array(0...5))
    #expect(some.blocks == 6)
    #expect(some.seeds == "0-5")
  }

  @Test func gramWithoutGramRowsIsRefusedAndBadCSVShardsNameFileAndLine() throws {
    let directory = try scratch()
    _ = try map(directory, seeds: "0-2", task: 0, tasks: 1)
    #expect { try map(directory, seeds: "0-3", task: 0, tasks: 1, gram: true) } throws: { "\($0)".contains("computed without --gram") }
    #expect {
      try SVDReduce.run(shards: ["\(directory)/shard-0.sqlite"], nrow: 60, ncol: 40, expected: nil, exact: true)
    } throws: { "\($0)".contains("no Gram matrix; run svd-map with --gram") }
    let store = try ResultStore(readingFrom: "\(directory)/shard-0.sqlite", table: SVDMap.table(nrow: 60, ncol: 40))
    let csv = "\(directory)/shard-0.csv"
    try SVDMap.exportCSV(from: store, to: csv)
    let lines = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n")
    let cases: [(String, String)] = [
      (lines[0] + "\n" + lines[1] + "\n" + lines[2].prefix(100), "\(csv):3: 8 fields, expected 44"),
      (lines[0] + "\n" + lines[1].replacingOccurrences(of: ",0.", with: ",zero.", options: [], range: nil), "\(csv):2: column"),
      (lines[0].replacingOccurrences(of: "ve039", with: "ve39"), "\(csv):1: the header"),
    ]
    for (text, message) in cases {
      try text.write(toFile: csv, atomically: true, encoding: .utf8)
      #expect { try SVDReduce.run(shards: [csv], nrow: 60, ncol: 40, expected: nil) } throws: { "\($0)".hasPrefix(message) }
    }
    #expect { try SVDReduce.run(shards: [csv], nrow: 60, ncol: 41, expected: nil) } throws: { "\($0)".contains("expected the 45") }
  }

  @Test(arguments: ["", "5-3", "a-b", "1,,2", "-4"])
  func badSeedListsAreOneLine(text: String) {
    #expect(throws: WorkerError.self) { try SeedList.parse(text) }
  }

  /// The array's task id and count are checked by svd-map's library, not its main.
  @Test(arguments: [(-1, 4), (0, 0)])
  func aBadArrayTaskIsRefusedBeforeAnyFile(task: Int, tasks: Int) {
    let map = SVDMap(nrow: 6, ncol: 4, seeds: [0], outputDirectory: "/nonexistent/svd", task: task, tasks: tasks, log: { _ in })
    #expect(throws: WorkerError("bad SLURM_ARRAY_TASK_ID/COUNT")) { try map.run() }
  }
}
