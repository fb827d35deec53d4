/* Test-only shim, never shipped: Debian's wine 8.0 has no bcryptprimitives.dll!ProcessPrng,
 * which Rust's std imports for random numbers. This DLL, placed beside the .exe under test,
 * provides it on top of advapi32's RtlGenRandom (SystemFunction036). Built by scripts/cross/wine. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
