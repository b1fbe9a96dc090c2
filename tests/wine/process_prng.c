/*
 * A stand-in for Windows' bcryptprimitives.dll, for running shoal.exe under
 * Wine in tests only; it is never shipped.
 *
 * Rust's standard library takes its random numbers from ProcessPrng in
 * bcryptprimitives.dll (Windows 10 and later). Wine 8 has no such export,
 * so without this shim a Rust program exits with status 53 before main.
 * ProcessPrng is built here on SystemFunction036 (RtlGenRandom) from
 * advapi32, which Wine does have; placed beside the .exe, this DLL is
 * loaded instead of the system's.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

/* Documented to always return TRUE; it cannot fail on real Windows. */
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
