{
  "targets": [
    {
      "target_name": "mllm_native",
      "sources": [
        "native/addon.cc",
        "native/thread_pool.cc",
        "native/gemm.cc",
        "native/elementwise.cc",
        "native/norms.cc",
        "native/softmax.cc",
        "native/reductions.cc",
        "native/data_movement.cc",
        "native/optimizer.cc",
        "native/quantized_matmul.cc"
      ],
      "actions": [
        {
          "action_name": "generate_op_codes",
          "inputs": ["src/engine/native/op_codes.ts", "scripts/generate-op-codes.js"],
          "outputs": ["<(SHARED_INTERMEDIATE_DIR)/op_codes.h"],
          "action": ["node", "scripts/generate-op-codes.js", "src/engine/native/op_codes.ts", "<(SHARED_INTERMEDIATE_DIR)/op_codes.h"],
          "message": "Generating op_codes.h from src/engine/native/op_codes.ts"
        }
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "<(SHARED_INTERMEDIATE_DIR)"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-O3", "-std=c++17", "-fno-math-errno", "-fno-exceptions", "-Wall", "-Wno-unused-function"],
      "cflags_cc!": ["-fno-rtti"],
      "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-O3", "-std=c++17"] }
    }
  ]
}
