// swift-tools-version: 6.0
import PackageDescription

// Module map (dependencies point down):
//   ci-{config,prepare,run,cleanup} -> ExecutorCLI -> ExecutorCore -> Scheduling -> SbatchModel
//                                           |             |             \-> ChildProcesses -> CChildProcessShims
//                                           |             \-> SbatchModel, CustomExecutorAPI, JobIdentity -> JWTKit
//                                           \-> Slurm -> Scheduling, SbatchModel  (only the CLI picks a backend)
//   ci-gen -> PipelineSpec (its command bodies) -> SbatchModel, WorkerTasks, DependencyGraph, AtomicFiles, Yams
//   ci-worker -> CustomExecutorAPI (the ledger variable), Report -> Workers, SbatchModel (sacct lines, times, sizes), CustomExecutorAPI (ledger), Stencil, Yams
//             -> Workers -> SVD -> NumpyRandom, CLapack;  Workers -> CCurl, Crypto, GRDB
//             -> WorkerTasks
//   ci-local -> RunnerEmulator -> CustomExecutorAPI, ChildProcesses, JobIdentity, DependencyGraph, Yams
//   AtomicFiles (the one atomic write) <- ExecutorCore, Workers, Report, PipelineSpec
//   DependencyGraph (the one cycle check) <- PipelineSpec, RunnerEmulator
//   ExecutorTesting (FakeScheduler, ManualClock) -> ExecutorCore, Scheduling: test targets only
//   TestSizes (the small/medium/large tags) <- every test target
// SbatchModel, PipelineSpec, WorkerTasks and the workers' modules import no executor module
// (CustomExecutorAPI is the wire contract: the ledger record ci-worker publish reads).
//
// The driver's modules import FoundationEssentials where there is one (`#if canImport`), so
// the driver's processes stay small (no ICU); the files keep only the #if.
let strict: [SwiftSetting] = [
  .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
  name: "ci-slurm",
  products: [
    .executable(name: "ci-config", targets: ["ci-config"]),
    .executable(name: "ci-prepare", targets: ["ci-prepare"]),
    .executable(name: "ci-run", targets: ["ci-run"]),
    .executable(name: "ci-cleanup", targets: ["ci-cleanup"]),
    .executable(name: "ci-local", targets: ["ci-local"]),
    .executable(name: "ci-gen", targets: ["ci-gen"]),
    .executable(name: "ci-worker", targets: ["ci-worker"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    .package(url: "https://github.com/stencilproject/Stencil", from: "0.15.1"),
    // SHA-256 for downloads and converted inputs: BoringSSL's assembly, several times our
    // own Swift version's speed (docs/benchmarks.md).
    .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
    // GitLab's signed ID tokens (RS256 against the instance's JWKS) for run-as identity.
    .package(url: "https://github.com/vapor/jwt-kit", from: "5.8.0"),
    // SQLite (issue #14): GRDB for every connection, query and cursor in the workers; only
    // convert's bulk insert binds through its GRDBSQLite module (apt libsqlite3-dev), the
    // C interface, since it binds straight from its parse buffers.
    .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
  ],
  targets: [
    // The runner's wire contract: env names, config JSON, stage names. Foundation only.
    .target(name: "CustomExecutorAPI", swiftSettings: strict),
    // The one atomic file write (temporary beside, O_EXCL|O_NOFOLLOW, rename): the driver's
    // private files, the workers' outputs, ci-gen's pipeline.
    .target(name: "AtomicFiles", swiftSettings: strict),
    // posix_spawn with process groups, signal resets and pipe draining.
    .target(name: "CChildProcessShims"),
    .target(name: "ChildProcesses", dependencies: ["CChildProcessShims"], swiftSettings: strict),
    // The sbatch vocabulary as values: requests and the option table, times, arrays, the
    // admin's policy, shell words, the job's file layout and sbatch line. No processes.
    .target(name: "SbatchModel", swiftSettings: strict),
    // The Scheduler protocol, the job model, command running, and the local backend.
    .target(name: "Scheduling", dependencies: ["SbatchModel", "ChildProcesses"], swiftSettings: strict),
    // SlurmScheduler and pure parsers of sbatch/squeue/scontrol/sacct output.
    .target(name: "Slurm", dependencies: ["Scheduling", "SbatchModel", "AtomicFiles"], swiftSettings: strict),
    // GitLab ID tokens: verified for run-as identity, minted by ci-local and the tests.
    .target(
      name: "JobIdentity", dependencies: [.product(name: "JWTKit", package: "jwt-kit")], swiftSettings: strict),
    // The four phases as library code; knows Scheduler, never Slurm.
    .target(
      name: "ExecutorCore", dependencies: ["Scheduling", "SbatchModel", "CustomExecutorAPI", "JobIdentity", "AtomicFiles"],
      swiftSettings: strict),
    // Test support only: a scriptable FakeScheduler on a ManualClock, for in-process
    // lifecycle tests of the phases.
    .target(name: "ExecutorTesting", dependencies: ["ExecutorCore", "Scheduling", "SbatchModel"], swiftSettings: strict),
    // Argument parsing, settings loading, backend choice, the one exit-code mapper.
    .target(
      name: "ExecutorCLI",
      dependencies: [
        "ExecutorCore", "Slurm", "Scheduling", "SbatchModel", "CustomExecutorAPI", "ChildProcesses",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ], swiftSettings: strict),
    // Plays gitlab-runner's part: .gitlab-ci.yml subset, scripts, the four phases.
    .target(
      name: "RunnerEmulator",
      dependencies: [
        "CustomExecutorAPI", "ChildProcesses", "JobIdentity", "DependencyGraph", .product(name: "Yams", package: "Yams"),
      ], swiftSettings: strict),
    // The one cycle check of a dependency graph (a pipeline's needs, a spec's stages).
    .target(name: "DependencyGraph", swiftSettings: strict),
    // ci-worker's task names: the one list ci-worker and ci-gen's checks share.
    .target(name: "WorkerTasks", swiftSettings: strict),
    // Pipeline specs: model, validation, plan with GitLab's limits, deterministic YAML.
    .target(
      name: "PipelineSpec", dependencies: ["SbatchModel", "WorkerTasks", "DependencyGraph", "AtomicFiles", .product(name: "Yams", package: "Yams")],
      swiftSettings: strict),
    .executableTarget(
      name: "ci-gen",
      dependencies: [
        "PipelineSpec", .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ], swiftSettings: strict),
    // numpy's default_rng (SeedSequence, PCG64, ziggurat normals), bit for bit.
    .target(name: "NumpyRandom", swiftSettings: strict),
    // LAPACK's C interface over OpenBLAS (apt: liblapacke-dev libopenblas-dev).
    .systemLibrary(name: "CLapack", path: "Sources/CLapack", providers: [.apt(["liblapacke-dev", "libopenblas-dev"])]),
    // The course's SVD experiment: the matrix, dgesdd, the per-seed row.
    .target(name: "SVD", dependencies: ["CLapack", "NumpyRandom"], swiftSettings: strict),
    // libcurl's easy interface for download (apt: libcurl4-openssl-dev).
    .systemLibrary(name: "CCurl", path: "Sources/CCurl", providers: [.apt(["libcurl4-openssl-dev"])]),
    // The job payloads (svd-map, svd-reduce, ...): no executor imports.
    .target(
      name: "Workers",
      dependencies: [
        "SVD", "CCurl", "AtomicFiles", .product(name: "Crypto", package: "swift-crypto"), .product(name: "GRDB", package: "GRDB.swift"),
        .product(name: "GRDBSQLite", package: "GRDB.swift"),
      ],
      swiftSettings: strict),
    // visualize (plotly figure JSON) and publish (an HTML dashboard from a Jinja-style
    // template; Yams reads the .gitlab-ci.yml for the DAG).
    .target(
      name: "Report",
      dependencies: [
        "Workers", "SbatchModel", "CustomExecutorAPI", "AtomicFiles", .product(name: "Stencil", package: "Stencil"),
        .product(name: "Yams", package: "Yams"),
      ],
      swiftSettings: strict),
    .executableTarget(
      name: "ci-worker",
      dependencies: ["Workers", "Report", "SVD", "WorkerTasks", "CustomExecutorAPI", .product(name: "ArgumentParser", package: "swift-argument-parser")],
      swiftSettings: strict,
      // Release: the Swift runtime and Foundation linked in, not loaded, which takes the
      // worker's start from about 50 ms to 30 (curl's is 15; on a 256 MiB download that is
      // most of the margin against curl). The group lists Foundation's static parts, which
      // -static-stdlib alone leaves unresolved.
      linkerSettings: [.unsafeFlags(["-static-stdlib", "-Xlinker", "--start-group", "-lFoundation", "-lCoreFoundation", "-l_FoundationCShims", "-l_FoundationCollections", "-lFoundationEssentials", "-lFoundationInternationalization", "-l_FoundationICU", "-lswiftSynchronization", "-lswiftDispatch", "-ldispatch", "-lBlocksRuntime", "-lstdc++", "-Xlinker", "--end-group"], .when(configuration: .release))]),
    .executableTarget(name: "ci-config", dependencies: ["ExecutorCLI"], swiftSettings: strict),
    .executableTarget(name: "ci-prepare", dependencies: ["ExecutorCLI"], swiftSettings: strict),
    .executableTarget(name: "ci-run", dependencies: ["ExecutorCLI"], swiftSettings: strict),
    .executableTarget(name: "ci-cleanup", dependencies: ["ExecutorCLI"], swiftSettings: strict),
    .executableTarget(
      name: "ci-local",
      dependencies: [
        "RunnerEmulator", .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ], swiftSettings: strict),
    // Test support only: the size tags (small, medium, large) every test target uses.
    .target(name: "TestSizes", swiftSettings: strict),
    .testTarget(name: "AtomicFilesTests", dependencies: ["TestSizes", "AtomicFiles"]),
    .testTarget(name: "SbatchModelTests", dependencies: ["TestSizes", "SbatchModel"]),
    .testTarget(
      name: "SlurmTests", dependencies: ["TestSizes", "Slurm", "Scheduling", "SbatchModel", "ExecutorCore"], exclude: ["Fixtures"]),
    .testTarget(name: "SchedulingTests", dependencies: ["TestSizes", "Scheduling", "SbatchModel", "ChildProcesses"]),
    .testTarget(
      name: "ExecutorCoreTests",
      dependencies: [
        "TestSizes", "ExecutorCore", "ExecutorTesting", "Scheduling", "SbatchModel", "CustomExecutorAPI", "JobIdentity",
        .product(name: "JWTKit", package: "jwt-kit"),
      ], exclude: ["Fixtures"]),
    .testTarget(name: "RunnerEmulatorTests", dependencies: ["TestSizes", "RunnerEmulator"]),
    .testTarget(name: "PipelineSpecTests", dependencies: ["TestSizes", "PipelineSpec", "SbatchModel", "WorkerTasks"]),
    .testTarget(name: "WorkersTests", dependencies: [
        "TestSizes", "NumpyRandom", "SVD", "Workers", "Report", "CustomExecutorAPI", .product(name: "GRDB", package: "GRDB.swift"),
      ], exclude: ["Support"]),
    // Runs the built executables: with fake Slurm commands first on PATH, and against the
    // real local Slurm (required when CI=true).
    .testTarget(
      name: "ExecutorEndToEndTests", dependencies: ["TestSizes", "CustomExecutorAPI", "ChildProcesses", "JobIdentity"],
      exclude: ["FakeBin", "Browser"]),
    // Runs the docs' `sh runnable` blocks in a scratch copy with the built products on PATH.
    .testTarget(name: "DocsTests", dependencies: ["TestSizes"]),
  ]
)
