//! MACs: ISO/IEC 9797-1 algorithms 1 and 3 with padding methods 1 and 2, and AES-CMAC.
