/*
 * A stand-in for the macOS SDK's TargetConditionals.h, for `cargo check`
 * of the macOS agent on a Linux host only (scripts/cross/check.sh): ring's
 * C code includes it to tell macOS from iOS. The objects compiled with it
 * are never linked; a real macOS build uses Apple's SDK.
 */
#ifndef SHOAL_TARGET_CONDITIONALS_STUB_H
#define SHOAL_TARGET_CONDITIONALS_STUB_H
#define TARGET_OS_MAC 1
#define TARGET_OS_OSX 1
#define TARGET_OS_IPHONE 0
#define TARGET_OS_IOS 0
#endif
