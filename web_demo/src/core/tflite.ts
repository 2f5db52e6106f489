/**
 * What the page needs from the TFLite flatbuffer itself: each signature input's and output's
 * element type and quantization (scale, zero point). LiteRT.js reports names and shapes but not
 * quantization, and the image, masks and probabilities of a tfuq model are quantized.
 *
 * Read with the `flatbuffers` package's ByteBuffer over the field numbers of TFLite's
 * `schema.fbs` (Model.subgraphs = 2, Model.signature_defs = 7; SubGraph.tensors = 0;
 * Tensor.shape = 0, type = 1, name = 3, quantization = 4; QuantizationParameters.scale = 2,
 * zero_point = 3; SignatureDef.inputs = 0, outputs = 1, subgraph_index = 4;
 * TensorMap.name = 0, tensor_index = 1).
 */

import { ByteBuffer, Encoding } from "flatbuffers";

/** TFLite's TensorType enum values for the types a tfuq model uses. */
export const TENSOR_TYPES: Record<number, TensorKind> = { 0: "float32", 2: "int32", 3: "uint8", 9: "int8" };
export type TensorKind = "float32" | "int32" | "uint8" | "int8";

export interface TensorInfo {
  name: string;
  type: TensorKind;
  shape: number[];
  /** 0 when not quantized (TFLite's convention). */
  scale: number;
  zeroPoint: number;
}

export interface SignatureInfo {
  inputs: Record<string, TensorInfo>;
  outputs: Record<string, TensorInfo>;
}

function fieldOffset(bb: ByteBuffer, table: number, field: number): number {
  return bb.__offset(table, 4 + 2 * field);
}

function vector(bb: ByteBuffer, table: number, field: number): { start: number; length: number } | null {
  const o = fieldOffset(bb, table, field);
  if (!o) return null;
  return { start: bb.__vector(table + o), length: bb.__vector_len(table + o) };
}

function tables(bb: ByteBuffer, table: number, field: number): number[] {
  const v = vector(bb, table, field);
  if (!v) return [];
  return Array.from({ length: v.length }, (_, i) => bb.__indirect(v.start + 4 * i));
}

function tensorInfo(bb: ByteBuffer, tensor: number, signatureName: string): TensorInfo {
  const typeOffset = fieldOffset(bb, tensor, 1);
  const typeCode = typeOffset ? bb.readInt8(tensor + typeOffset) : 0;
  const type = TENSOR_TYPES[typeCode];
  if (!type) throw new Error(`tensor ${signatureName} has TFLite type ${typeCode}, which this page does not handle`);
  const shapeVector = vector(bb, tensor, 0);
  const shape = shapeVector ? Array.from({ length: shapeVector.length }, (_, i) => bb.readInt32(shapeVector.start + 4 * i)) : [];
  let scale = 0;
  let zeroPoint = 0;
  const q = fieldOffset(bb, tensor, 4);
  if (q) {
    const quantization = bb.__indirect(tensor + q);
    const scales = vector(bb, quantization, 2);
    const zeros = vector(bb, quantization, 3);
    if (scales && scales.length > 1) throw new Error(`tensor ${signatureName} is quantized per channel; this page handles per-tensor quantization`);
    if (scales && scales.length === 1) scale = bb.readFloat32(scales.start);
    if (zeros && zeros.length === 1) zeroPoint = Number(bb.readInt64(zeros.start));
  }
  return { name: signatureName, type, shape, scale, zeroPoint };
}

/** Inputs and outputs of the model's first signature, by signature name. */
export function readSignature(flatbuffer: Uint8Array): SignatureInfo {
  const bb = new ByteBuffer(flatbuffer);
  const model = bb.readInt32(bb.position()) + bb.position();
  const subgraphs = tables(bb, model, 2);
  const signatures = tables(bb, model, 7);
  if (signatures.length === 0) throw new Error("the model has no signature (tfuq convert always writes one)");
  const signature = signatures[0];
  const indexOffset = fieldOffset(bb, signature, 4);
  const subgraph = subgraphs[indexOffset ? bb.readUint32(signature + indexOffset) : 0];
  const tensors = tables(bb, subgraph, 0);
  const read = (field: number): Record<string, TensorInfo> => {
    const result: Record<string, TensorInfo> = {};
    for (const map of tables(bb, signature, field)) {
      const name = bb.__string(map + fieldOffset(bb, map, 0), Encoding.UTF16_STRING) as string;
      const indexAt = fieldOffset(bb, map, 1);
      const index = indexAt ? bb.readUint32(map + indexAt) : 0;
      result[name] = tensorInfo(bb, tensors[index], name);
    }
    return result;
  };
  return { inputs: read(0), outputs: read(1) };
}
