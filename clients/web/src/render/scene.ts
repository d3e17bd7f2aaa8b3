// Three.js view of a World: streets, sidewalks, markings, buildings, traffic lights and stop signs, parked cars and
// the player's car. Geometry comes from the pure builders in world/worldGeometry.ts (city frame, z up); one group
// rotated -90 degrees about x turns the city frame into Three's y-up frame: (x, y, z) -> (x, z, -y).

import * as THREE from "three";
import { ActorKind, IntersectionControl, type World } from "../gen/scalediffusion/v1/world_pb";
import type { CameraMode, CameraPose } from "../sim/camera";
import type { VehicleState } from "../sim/vehicle";
import type { ActorPose } from "../world/actors";
import {
  addBox,
  addFlatQuads,
  addUprightPolygon,
  buildingMesh,
  centroid,
  groupByTile,
  buildingPrisms,
  controlPoles,
  signalHeads,
  emptyMesh,
  intersectionBoxes,
  laneMarkings,
  lightColor,
  roadSurfaces,
  squareQuad,
  type SignalHead,
  type LightColor,
  type MeshData,
  type Quad,
} from "../world/worldGeometry";

export interface RendererOptions {
  width: number;
  height: number;
  fovDeg: number;
  /** Keep the drawing buffer so other canvases can copy it at any time (slower; default false). */
  preserveDrawingBuffer?: boolean;
}

const COLORS = {
  sky: 0xb4cde6,
  ground: 0x77786f,
  asphalt: 0x2e3033,
  junction: 0x323437,
  sidewalk: 0xa9a8a2,
  yellow: 0xe2b93b,
  white: 0xeeeeee,
  pole: 0x2e3235,
  head: 0x1d1f21,
  stop: 0xc4161c,
  lampOff: 0x262626,
  red: 0xff2a1a,
  amber: 0xffb000,
  green: 0x19e05a,
};

/** NPC traffic: warm colours, never the player's blue. */
const NPC_COLORS = [0xd9822b, 0xc0392b, 0xe5c12e, 0x2e8b57, 0xf0f0f0, 0x7d3c98];
const PEDESTRIAN_COLORS = [0xc0504d, 0x4f81bd, 0x9bbb59, 0x8064a2, 0xf79646, 0x404040];
const PEDESTRIAN_HEIGHT_M = 1.7;

const PARKED_COLORS = [0xb0b4b8, 0x1f2a44, 0x7a1f1f, 0xe8e8e8, 0x2d2d2d, 0x4a5a3a, 0x8a6d3b, 0x35507a];

function toGeometry(data: MeshData): THREE.BufferGeometry {
  const g = new THREE.BufferGeometry();
  g.setAttribute("position", new THREE.Float32BufferAttribute(data.positions, 3));
  g.setAttribute("normal", new THREE.Float32BufferAttribute(data.normals, 3));
  g.setAttribute("uv", new THREE.Float32BufferAttribute(data.uvs, 2));
  g.setAttribute("color", new THREE.Float32BufferAttribute(data.colors, 3));
  g.setIndex(data.indices);
  g.computeBoundingSphere();
  return g;
}

function flatMaterial(layer: number): THREE.MeshLambertMaterial {
  return new THREE.MeshLambertMaterial({ vertexColors: true, polygonOffset: true, polygonOffsetFactor: -layer, polygonOffsetUnits: -layer });
}

/** Flat quads as one mesh per city tile (worldGeometry.groupByTile), all with one material: Three.js then draws
 * only the tiles in view. */
function flatTiles(quads: readonly Quad[], z: number, color: number, material: THREE.Material): THREE.Mesh[] {
  return groupByTile(quads, centroid).map((tile) => new THREE.Mesh(toGeometry(addFlatQuads(emptyMesh(), tile, z, color)), material));
}

/** A repeating facade tile: wall (white, tinted by the vertex colour) with one window. */
function windowTexture(): THREE.Texture | null {
  if (typeof document === "undefined") return null;
  const c = document.createElement("canvas");
  c.width = 64;
  c.height = 64;
  const ctx = c.getContext("2d");
  if (ctx === null) return null;
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, 64, 64);
  ctx.fillStyle = "#4a5866";
  ctx.fillRect(12, 16, 40, 34);
  ctx.fillStyle = "#6f8294";
  ctx.fillRect(14, 18, 17, 30);
  const tex = new THREE.CanvasTexture(c);
  tex.wrapS = THREE.RepeatWrapping;
  tex.wrapT = THREE.RepeatWrapping;
  tex.colorSpace = THREE.SRGBColorSpace;
  tex.anisotropy = 4;
  return tex;
}

interface Signal {
  head: SignalHead;
  offsetS: number;
  state: LightColor | null;
  index: number;
}

export class WorldRenderer {
  readonly canvas: HTMLCanvasElement;
  private readonly renderer: THREE.WebGLRenderer;
  private readonly scene = new THREE.Scene();
  private readonly camera: THREE.PerspectiveCamera;
  private readonly city = new THREE.Group();
  private readonly car = new THREE.Group();
  private readonly lamps: THREE.InstancedMesh | null = null;
  private readonly signals: Signal[] = [];
  private readonly color = new THREE.Color();
  /** Moving actors: one instanced mesh per kind (vehicles, pedestrians), instances in World order. */
  private readonly npcCars: THREE.InstancedMesh | null = null;
  private readonly pedestrians: THREE.InstancedMesh | null = null;
  private readonly m4 = new THREE.Matrix4();
  private captureTarget: THREE.WebGLRenderTarget | null = null;
  private capturePixels = new Uint8Array(0);
  private readonly quat = new THREE.Quaternion();
  private readonly pos = new THREE.Vector3();
  private readonly scl = new THREE.Vector3();

  constructor(
    private readonly world: World,
    opts: RendererOptions,
  ) {
    this.canvas = document.createElement("canvas");
    this.renderer = new THREE.WebGLRenderer({
      canvas: this.canvas,
      antialias: true,
      preserveDrawingBuffer: opts.preserveDrawingBuffer ?? false,
      powerPreference: "high-performance",
    });
    this.renderer.setPixelRatio(1);
    this.renderer.setSize(opts.width, opts.height, false);
    this.camera = new THREE.PerspectiveCamera(opts.fovDeg, opts.width / opts.height, 0.1, 2000);
    this.scene.background = new THREE.Color(COLORS.sky);
    this.scene.fog = new THREE.Fog(COLORS.sky, 250, 1200);
    this.scene.add(new THREE.HemisphereLight(0xe4ecff, 0x5a564e, 1.6));
    const sun = new THREE.DirectionalLight(0xfff3e0, 2.0);
    sun.position.set(300, 500, 200);
    this.scene.add(sun);
    this.city.rotation.x = -Math.PI / 2;
    this.scene.add(this.city);
    this.buildCity();
    this.lamps = this.buildSignals();
    this.buildCar();
    const nPeds = this.world.actors.filter((a) => a.kind === ActorKind.PEDESTRIAN).length;
    const nCars = this.world.actors.length - nPeds;
    this.npcCars = this.buildActors(nCars, new THREE.BoxGeometry(1, 1, 1), NPC_COLORS);
    // A capsule 1 m wide and 1 m tall in total, scaled per pedestrian; upright along the city's z.
    const capsule = new THREE.CapsuleGeometry(0.5, 0.5, 4, 10).rotateX(Math.PI / 2);
    capsule.scale(1, 1, 1 / 1.5);
    this.pedestrians = this.buildActors(nPeds, capsule, PEDESTRIAN_COLORS);
  }

  private buildActors(count: number, geometry: THREE.BufferGeometry, colors: readonly number[]): THREE.InstancedMesh | null {
    if (count === 0) {
      geometry.dispose();
      return null;
    }
    const mesh = new THREE.InstancedMesh(geometry, new THREE.MeshLambertMaterial(), count);
    mesh.instanceMatrix.setUsage(THREE.DynamicDrawUsage);
    mesh.frustumCulled = false; // instances move anywhere in the city
    for (let i = 0; i < count; i++) mesh.setColorAt(i, this.color.setHex(colors[i % colors.length]!));
    mesh.count = 0;
    this.city.add(mesh);
    return mesh;
  }

  /** Places the moving actors (actorPoses at the drive time). */
  private updateActors(actors: readonly ActorPose[]): void {
    let cars = 0;
    let peds = 0;
    const up = new THREE.Vector3(0, 0, 1);
    for (const a of actors) {
      const ped = a.kind === ActorKind.PEDESTRIAN;
      const mesh = ped ? this.pedestrians : this.npcCars;
      if (mesh === null) continue;
      const i = ped ? peds++ : cars++;
      if (i >= mesh.instanceMatrix.count) continue;
      if (ped) {
        this.pos.set(a.x, a.y, PEDESTRIAN_HEIGHT_M / 2);
        this.scl.set(a.widthM, a.widthM, PEDESTRIAN_HEIGHT_M);
      } else {
        this.pos.set(a.x, a.y, 0.75);
        this.scl.set(a.lengthM, a.widthM, 1.3);
      }
      mesh.setMatrixAt(i, this.m4.compose(this.pos, this.quat.setFromAxisAngle(up, a.heading), this.scl));
    }
    for (const [mesh, n] of [
      [this.npcCars, cars],
      [this.pedestrians, peds],
    ] as const) {
      if (mesh === null) continue;
      mesh.count = Math.min(n, mesh.instanceMatrix.count);
      mesh.instanceMatrix.needsUpdate = true;
    }
  }

  private buildCity(): void {
    const w = this.world;
    const min = w.min ?? { x: -500, y: -500 };
    const max = w.max ?? { x: 500, y: 500 };
    const pad = 400;
    const ground: Quad = [
      { x: min.x - pad, y: min.y - pad },
      { x: max.x + pad, y: min.y - pad },
      { x: max.x + pad, y: max.y + pad },
      { x: min.x - pad, y: max.y + pad },
    ];
    this.city.add(new THREE.Mesh(toGeometry(addFlatQuads(emptyMesh(), [ground], -0.02, COLORS.ground)), flatMaterial(0)));
    const { roads, sidewalks } = roadSurfaces(w);
    const paved = flatMaterial(1);
    this.city.add(...flatTiles(roads.map((r) => r.corners), 0, COLORS.asphalt, paved));
    this.city.add(...flatTiles(intersectionBoxes(w).map((b) => squareQuad(b.center, b.halfSize)), 0, COLORS.junction, flatMaterial(2)));
    this.city.add(...flatTiles(sidewalks.map((s) => s.corners), 0.12, COLORS.sidewalk, paved));
    const marks = laneMarkings(w);
    const paint = flatMaterial(4);
    for (const tile of groupByTile(marks, (m) => centroid(m.corners))) {
      const markMesh = emptyMesh();
      addFlatQuads(markMesh, tile.filter((m) => m.color === "yellow").map((m) => m.corners), 0, COLORS.yellow);
      addFlatQuads(markMesh, tile.filter((m) => m.color === "white").map((m) => m.corners), 0, COLORS.white);
      if (markMesh.indices.length > 0) this.city.add(new THREE.Mesh(toGeometry(markMesh), paint));
    }
    const prisms = buildingPrisms(w);
    if (prisms.length > 0) {
      const facade = new THREE.MeshLambertMaterial({ vertexColors: true, map: windowTexture() });
      for (const tile of groupByTile(prisms, (p) => centroid(p.footprint))) this.city.add(new THREE.Mesh(toGeometry(buildingMesh(tile)), facade));
    }
    // Parked cars: one instanced box each (body), coloured per car.
    if (w.parked.length > 0) {
      const body = new THREE.InstancedMesh(new THREE.BoxGeometry(1, 1, 1), new THREE.MeshLambertMaterial(), w.parked.length);
      const m = new THREE.Matrix4();
      const q = new THREE.Quaternion();
      const up = new THREE.Vector3(0, 0, 1);
      w.parked.forEach((p, i) => {
        const len = p.lengthM || 4.6;
        const wid = p.widthM || 1.9;
        m.compose(new THREE.Vector3(p.position?.x ?? 0, p.position?.y ?? 0, 0.75), q.setFromAxisAngle(up, p.heading), new THREE.Vector3(len, wid, 1.3));
        body.setMatrixAt(i, m);
        body.setColorAt(i, this.color.setHex(PARKED_COLORS[i % PARKED_COLORS.length]!));
      });
      this.city.add(body);
    }
  }

  private buildSignals(): THREE.InstancedMesh | null {
    const props = emptyMesh();
    const offsets = new Map(this.world.intersections.map((i) => [i.id, i.lightOffsetS]));
    for (const pole of controlPoles(this.world)) {
      if (pole.control !== IntersectionControl.STOP_SIGN) continue;
      const p = pole.position;
      addBox(props, { x: p.x, y: p.y, z: 1.25 }, { x: 0.08, y: 0.08, z: 2.5 }, 0, COLORS.pole);
      addUprightPolygon(props, { x: p.x + Math.cos(pole.facing) * 0.06, y: p.y + Math.sin(pole.facing) * 0.06, z: 2.45 }, 0.4, 8, pole.facing, COLORS.stop);
    }
    const xyz = ([x, y, z]: [number, number, number]) => ({ x, y, z });
    for (const head of signalHeads(this.world)) {
      for (const [centre, size, yaw] of head.mounts) addBox(props, xyz(centre), xyz(size), yaw, COLORS.pole);
      addBox(props, xyz(head.center), xyz(head.size), head.facing, COLORS.head);
      for (const [centre, size, yaw] of head.visors) addBox(props, xyz(centre), xyz(size), yaw, COLORS.head);
      this.signals.push({ head, offsetS: offsets.get(head.intersectionId) ?? 0, state: null, index: this.signals.length });
    }
    if (props.indices.length > 0) {
      this.city.add(new THREE.Mesh(toGeometry(props), new THREE.MeshLambertMaterial({ vertexColors: true, side: THREE.DoubleSide })));
    }
    if (this.signals.length === 0) return null;
    // A unit sphere scaled per lamp: the far heads' lamps are larger.
    const lamps = new THREE.InstancedMesh(new THREE.SphereGeometry(1, 10, 8), new THREE.MeshBasicMaterial(), this.signals.length * 3);
    const m = new THREE.Matrix4();
    const scale = new THREE.Matrix4();
    for (const s of this.signals) {
      s.head.lamps.forEach(([x, y, z], k) => {
        const r = s.head.lampRadius;
        lamps.setMatrixAt(s.index * 3 + k, m.makeTranslation(x, y, z).multiply(scale.makeScale(r, r, r)));
        lamps.setColorAt(s.index * 3 + k, this.color.setHex(COLORS.lampOff));
      });
    }
    this.city.add(lamps);
    return lamps;
  }

  private buildCar(): void {
    const paint = new THREE.MeshLambertMaterial({ color: 0x1565c0 });
    const glass = new THREE.MeshLambertMaterial({ color: 0x22303a });
    const tyre = new THREE.MeshLambertMaterial({ color: 0x111111 });
    const body = new THREE.Mesh(new THREE.BoxGeometry(4.5, 1.85, 0.75), paint);
    body.position.set(0, 0, 0.6);
    const cabin = new THREE.Mesh(new THREE.BoxGeometry(2.3, 1.65, 0.62), glass);
    cabin.position.set(-0.35, 0, 1.28);
    this.car.add(body, cabin);
    const wheel = new THREE.CylinderGeometry(0.34, 0.34, 0.25, 14);
    for (const [x, y] of [
      [1.4, 0.9],
      [1.4, -0.9],
      [-1.4, 0.9],
      [-1.4, -0.9],
    ] as const) {
      const w = new THREE.Mesh(wheel, tyre);
      w.position.set(x, y, 0.34);
      this.car.add(w);
    }
    this.city.add(this.car);
  }

  setCameraMode(mode: CameraMode): void {
    this.car.visible = mode !== "dash";
  }

  setSize(width: number, height: number): void {
    this.renderer.setSize(width, height, false);
    this.camera.aspect = width / height;
    this.camera.updateProjectionMatrix();
  }

  /** Moves the car, the moving actors and the camera and sets the traffic lights for time tS (seconds). */
  update(vehicle: VehicleState, pose: CameraPose, tS: number, actors: readonly ActorPose[] = []): void {
    this.updateActors(actors);
    this.car.position.set(vehicle.x, vehicle.y, 0);
    this.car.rotation.set(0, 0, vehicle.theta);
    this.camera.position.set(pose.x, pose.z, -pose.y);
    this.camera.up.set(0, 1, 0);
    this.camera.lookAt(pose.target.x, pose.target.z, -pose.target.y);
    if (this.camera.fov !== pose.fovDeg) {
      this.camera.fov = pose.fovDeg;
      this.camera.updateProjectionMatrix();
    }
    if (this.lamps !== null) {
      let dirty = false;
      for (const s of this.signals) {
        const state = lightColor(this.world, s.offsetS, s.head.axis, tS);
        if (state === s.state) continue;
        s.state = state;
        dirty = true;
        const lit = state === "red" ? 0 : state === "yellow" ? 1 : 2;
        for (let k = 0; k < 3; k++) {
          const on = k === lit;
          this.lamps.setColorAt(s.index * 3 + k, this.color.setHex(on ? [COLORS.red, COLORS.amber, COLORS.green][k]! : COLORS.lampOff));
        }
      }
      if (dirty && this.lamps.instanceColor !== null) this.lamps.instanceColor.needsUpdate = true;
    }
  }

  render(): void {
    this.renderer.render(this.scene, this.camera);
  }

  /** Renders the scene at width x height into an offscreen target and returns its pixels (top row first): the
   * frame sent to the diffusion service. Reading back only those pixels matters on a machine without a GPU: a
   * snapshot of the whole 1280x720 canvas cost the browser's GPU process ~150 ms per frame (measured with Chrome's
   * tracing: RasterDecoderImpl::DoReadbackARGBImagePixels was most of its time), which the diffusion model, on the
   * same cores, paid for. The target is sRGB (SRGB8_ALPHA8), so the bytes are encoded as the canvas's are. */
  renderPixels(width: number, height: number): ImageData {
    let target = this.captureTarget;
    if (target === null || target.width !== width || target.height !== height) {
      target?.dispose();
      target = new THREE.WebGLRenderTarget(width, height, { colorSpace: THREE.SRGBColorSpace, depthBuffer: true });
      this.captureTarget = target;
      this.capturePixels = new Uint8Array(width * height * 4);
    }
    const aspect = this.camera.aspect;
    this.camera.aspect = width / height;
    this.camera.updateProjectionMatrix();
    try {
      this.renderer.setRenderTarget(target);
      this.renderer.render(this.scene, this.camera);
      this.renderer.readRenderTargetPixels(target, 0, 0, width, height, this.capturePixels);
    } finally {
      this.renderer.setRenderTarget(null);
      this.camera.aspect = aspect;
      this.camera.updateProjectionMatrix();
    }
    const image = new ImageData(width, height);
    const row = width * 4;
    for (let y = 0; y < height; y++) {
      // GL rows run bottom-up; ImageData rows top-down.
      image.data.set(this.capturePixels.subarray((height - 1 - y) * row, (height - y) * row), y * row);
    }
    return image;
  }

  dispose(): void {
    this.scene.traverse((o) => {
      const mesh = o as THREE.Mesh;
      mesh.geometry?.dispose();
      const mat = mesh.material as THREE.Material | THREE.Material[] | undefined;
      for (const m of Array.isArray(mat) ? mat : mat ? [mat] : []) {
        (m as THREE.MeshLambertMaterial).map?.dispose();
        m.dispose();
      }
    });
    this.renderer.dispose();
  }
}
