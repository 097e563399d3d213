public import Testing

/// Test sizes as SwiftPM tags its own tests; every suite carries the size of its largest
/// test (docs/architecture.md, "Tests by size", says how to run one size).
extension Tag {
  /// In-process, milliseconds: pure functions and values.
  @Tag public static var small: Self
  /// In-process with files, fake processes, or a fake scheduler on a manual clock.
  @Tag public static var medium: Self
  /// Real processes: the built executables, bash, python3, Slurm, Chromium.
  @Tag public static var large: Self
}
