// RUN: gai-opt %s -split-input-file --gai-param-copies -verify-diagnostics | FileCheck %s

// Both reads of w's bf16 conversion in @train_update, and @decode's, become
// the state argument param_copy.w; the update returns the copy of the new
// master beside it; @refresh_param_copies makes the copy from the master.
// b is read in f32 only: no copy. An f32 master that nothing converts keeps
// none either.
// CHECK-LABEL: func.func @train_update
// CHECK-SAME:    %[[COPY:[a-z0-9]+]]: tensor<8x8xbf16> {gai.name = "param_copy.w"}
// CHECK-SAME:    -> (tensor<f32> {gai.name = "loss"}, tensor<8x8xf32> {gai.name = "param.w"}, tensor<8xf32> {gai.name = "param.b"}, tensor<8x8xbf16> {gai.name = "param_copy.w"})
// CHECK-NOT:     gai.convert %{{.*}} : tensor<8x8xf32> to tensor<8x8xbf16>
// CHECK:         gai.matmul %{{.*}}, %[[COPY]]
// CHECK:         gai.matmul %{{.*}}, %[[COPY]]
// CHECK:         %[[NEW:.*]] = gai.sub
// CHECK:         %[[NEWCOPY:.*]] = gai.convert %[[NEW]] : tensor<8x8xf32> to tensor<8x8xbf16>
// CHECK:         return %{{.*}}, %[[NEW]], %{{.*}}, %[[NEWCOPY]]
// CHECK-LABEL: func.func @refresh_param_copies() -> (tensor<8x8xbf16> {gai.name = "param_copy.w"})
// CHECK:         %[[W:.*]] = gai.param "w" : tensor<8x8xf32>
// CHECK:         %[[C:.*]] = gai.convert %[[W]] : tensor<8x8xf32> to tensor<8x8xbf16>
// CHECK:         return %[[C]]
// CHECK-LABEL: func.func @decode
// CHECK-SAME:    %[[DCOPY:[a-z0-9]+]]: tensor<8x8xbf16> {gai.name = "param_copy.w"}
// CHECK-NEXT:    gai.matmul %{{.*}}, %[[DCOPY]]
// CHECK-LABEL: func.func @eval_f32
// CHECK:         gai.param "b"
// CHECK-NOT:     param_copy
func.func @train_update(%x: tensor<4x8xbf16>, %m: tensor<8x8xf32> {gai.name = "adam.m.w"}) -> (tensor<f32> {gai.name = "loss"}, tensor<8x8xf32> {gai.name = "param.w"}, tensor<8xf32> {gai.name = "param.b"}) {
  %w = gai.param "w" : tensor<8x8xf32>
  %wb = gai.convert %w : tensor<8x8xf32> to tensor<8x8xbf16>
  %y = gai.matmul %x, %wb : (tensor<4x8xbf16>, tensor<8x8xbf16>) -> tensor<4x8xbf16>
  %w2 = gai.param "w" : tensor<8x8xf32>
  %wb2 = gai.convert %w2 : tensor<8x8xf32> to tensor<8x8xbf16>
  %z = gai.matmul %y, %wb2 : (tensor<4x8xbf16>, tensor<8x8xbf16>) -> tensor<4x8xbf16>
  %zf = gai.convert %z : tensor<4x8xbf16> to tensor<4x8xf32>
  %l = gai.reduce sum %zf axes = [0, 1] : (tensor<4x8xf32>) -> tensor<f32>
  %new = gai.sub %w, %m : (tensor<8x8xf32>, tensor<8x8xf32>) -> tensor<8x8xf32>
  %b = gai.param "b" : tensor<8xf32>
  return %l, %new, %b : tensor<f32>, tensor<8x8xf32>, tensor<8xf32>
}
func.func @decode(%x: tensor<1x8xbf16>) -> tensor<1x8xbf16> {
  %w = gai.param "w" : tensor<8x8xf32>
  %wb = gai.convert %w : tensor<8x8xf32> to tensor<8x8xbf16>
  %y = gai.matmul %x, %wb : (tensor<1x8xbf16>, tensor<8x8xbf16>) -> tensor<1x8xbf16>
  return %y : tensor<1x8xbf16>
}
func.func @eval_f32(%x: tensor<8xf32>) -> tensor<8xf32> {
  %b = gai.param "b" : tensor<8xf32>
  %y = gai.add %x, %b : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
  return %y : tensor<8xf32>
}

// -----

// Another entry that writes a master would leave its copy behind.
func.func @train_update(%x: tensor<4x8xbf16>) -> (tensor<8x8xf32> {gai.name = "param.w"}) {
  %w = gai.param "w" : tensor<8x8xf32>
  %wb = gai.convert %w : tensor<8x8xf32> to tensor<8x8xbf16>
  %y = gai.matmul %x, %wb : (tensor<4x8xbf16>, tensor<8x8xbf16>) -> tensor<4x8xbf16>
  return %w : tensor<8x8xf32>
}
// expected-error @+1 {{gai-param-copies: @reset writes 'param.w' too; only @train_update may}}
func.func @reset() -> (tensor<8x8xf32> {gai.name = "param.w"}) {
  %z = gai.constant dense<0.0> : tensor<8x8xf32>
  return %z : tensor<8x8xf32>
}

// -----

// A master read in two narrower types would need two copies under one name.
func.func @train_update(%x: tensor<4x8xbf16>, %h: tensor<4x8xf16>) -> (tensor<8x8xf32> {gai.name = "param.w"}) {
  %w = gai.param "w" : tensor<8x8xf32>
  %wb = gai.convert %w : tensor<8x8xf32> to tensor<8x8xbf16>
  %y = gai.matmul %x, %wb : (tensor<4x8xbf16>, tensor<8x8xbf16>) -> tensor<4x8xbf16>
  // expected-error @+1 {{gai-param-copies: 'w' is converted to two types; one copy a weight}}
  %wh = gai.convert %w : tensor<8x8xf32> to tensor<8x8xf16>
  %z = gai.matmul %h, %wh : (tensor<4x8xf16>, tensor<8x8xf16>) -> tensor<4x8xf16>
  return %w : tensor<8x8xf32>
}
