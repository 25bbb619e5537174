#version 330
// Ray marcher of a VoxelField. It mirrors the sampling and compositing rules written in the
// docstring of engine/field/grid.py: rays o + t d with camera-z(d) = 1, clipped to the box and to
// [near, far], samples at t0 + (k + 0.5) * step / |d|, sigma = softplus(raw + shift) * scale
// interpolated on raw, alpha = 1 - exp(-sigma * step), colour sigmoid(raw colour), empty-space
// skipping on the nearest voxel's occupancy, the remaining transmittance takes the background.
// Extras: runs of empty blocks are leapt over (exact: every sample inside would be skipped; the
// block distance says how far the empty region around a block reaches), rays stop once T < u_tail
// (what is left is given the last sample's colour: behind a surface it looks much the same), the overlay / object views read the voxel's id,
// and in thin fog (every alpha within reach small, see systems/render/ops.py group_sizes) S
// consecutive samples merge into one at their centre with alpha over S steps (midpoint rule).
// Unbounded fields: what passes the box is composited from the contracted background grid,
// marched from the box exit outward exactly as engine/field/background.py does.

uniform sampler3D u_volume;   // [Z, Y, X] rgb = colour, a = density; RGBA16F raw values, or RGBA8:
                              // sigmoid'ed colour and density (raw - lo) / (hi - lo)
uniform sampler3D u_flags;    // [Z, Y, X] RGBA8: r = occupied, g = object id / 255 (0 = none),
                              // b = group size S / 255: samples here may merge S at a time
uniform sampler3D u_blocks;   // [Zb, Yb, Xb] R8: Chebyshev distance / 255 to the nearest occupied block
uniform bool u_encoded_u8;    // RGBA8 texels (else raw values: sigmoid the colour here)
uniform float u_raw_lo;
uniform float u_raw_hi;

uniform vec2 u_size;          // image W, H in pixels
uniform mat3 u_K_inv;         // pixel -> camera ray (z = 1)
uniform mat3 u_R;             // camera -> world rotation (T_world_camera[:3, :3])
uniform vec3 u_origin;        // camera centre in world coords
uniform vec3 u_bmin;          // field bbox min (world)
uniform vec3 u_bmax;          // field bbox max (world)
uniform vec3 u_res;           // X, Y, Z voxel counts
uniform int u_block;          // voxels per block side
uniform float u_step;         // step size, world units
uniform float u_shift;        // density_shift
uniform float u_scale;        // density_scale
uniform float u_near;
uniform float u_far;
uniform bool u_ndc;           // NDC field: rays go to NDC first (engine/math/rays.py ndc_rays)
uniform float u_ndc_near;
uniform vec2 u_ndc_scale;
uniform vec3 u_background;
uniform bool u_background_from_exit;
uniform bool u_unbounded;     // a background grid outside the box (engine/field/background.py)
uniform sampler3D u_outside;  // [R, R, R] RGBA16F raw: rgb = colour, a = density (contracted space)
uniform vec3 u_bg_centre;     // foreground box centre and half size (world): box coords p = (x - c) / h
uniform vec3 u_bg_half;
uniform float u_bg_res;       // R
uniform int u_bg_samples;     // N background samples per ray
uniform float u_bg_shift;
uniform float u_bg_scale;
uniform float u_tail;         // a ray ends once its transmittance T < u_tail, T given to the last colour

uniform bool u_overlay;       // tint pixels whose rendered mask reaches u_mask_threshold
uniform float u_mask_threshold;
uniform float u_tint;         // how much of the object colour replaces the pixel colour
uniform vec4 u_objects[32];   // per object id (1-based, index 0 unused): rgb colour, a = visible
uniform int u_view_mode;      // 0 = scene, 1 = object u_selected alone, 2 = scene without it
uniform int u_selected;       // object id the view modes refer to

out vec4 frag;

float softplus(float x) {      // torch.nn.functional.softplus (threshold 20)
    return x > 20.0 ? x : log(1.0 + exp(x));
}

vec3 colour_of(vec4 v) {
    return u_encoded_u8 ? v.rgb : 1.0 / (1.0 + exp(-v.rgb));
}

vec3 colour_at(vec3 tc) {
    return colour_of(texture(u_volume, tc));
}

vec3 contract(vec3 p) {       // box coords -> contracted coords in [-2, 2]^3
    float n = max(max(abs(p.x), abs(p.y)), abs(p.z));
    return n > 1.0 ? (2.0 - 1.0 / n) * p / max(n, 1e-9) : p;
}

vec3 outside_colour(vec3 o, vec3 d, float ts) {   // the background grid from ray parameter ts on
    const float EDGE_CAP = 1.0 - 1e-6;
    vec3 ob = (o - u_bg_centre) / u_bg_half, db = d / u_bg_half;
    float N = float(u_bg_samples);
    vec3 edge = contract(ob + ts * db);
    vec3 rgb = vec3(0.0);
    float T = 1.0;
    for (int j = 0; j < u_bg_samples; j++) {
        vec3 next = contract(ob + ts / (1.0 - min(float(j + 1) / N, EDGE_CAP)) * db);
        float delta = length(next - edge);
        edge = next;
        vec3 c = contract(ob + ts / (1.0 - (float(j) + 0.5) / N) * db);
        vec4 v = texture(u_outside, ((c * 0.5 + 1.0) * 0.5 * (u_bg_res - 1.0) + 0.5) / u_bg_res);
        float alpha = j == u_bg_samples - 1 ? 1.0 : 1.0 - exp(-softplus(v.a + u_bg_shift) * u_bg_scale * delta);
        rgb += T * alpha / (1.0 + exp(-v.rgb));
        T *= 1.0 - alpha;
    }
    return rgb;
}

void main() {
    vec2 pix = vec2(gl_FragCoord.x, u_size.y - gl_FragCoord.y);   // (x + .5, y + .5), y down
    vec3 d = u_R * (u_K_inv * vec3(pix, 1.0));
    vec3 o = u_origin;
    float near = u_near, far = u_far;
    if (u_ndc) {   // t becomes the NDC ray parameter s in [s(near), s(far)] (engine/field/grid.py)
        float dz = max(d.z, 1e-9);
        vec3 on = o + (u_ndc_near - o.z) / dz * d;
        float z_near = o.z + u_near * d.z, z_far = o.z + u_far * d.z;
        near = z_near > u_ndc_near ? 1.0 - u_ndc_near / z_near : 0.0;
        far = z_far > u_ndc_near ? 1.0 - u_ndc_near / z_far : 0.0;
        d = vec3(u_ndc_scale * (d.xy / dz - on.xy / u_ndc_near), 2.0);
        o = vec3(u_ndc_scale * on.xy / u_ndc_near, -1.0);
    }
    vec3 safe = mix(d, vec3(1e-9), lessThan(abs(d), vec3(1e-9)));
    vec3 ta = (u_bmin - o) / safe;
    vec3 tb = (u_bmax - o) / safe;
    vec3 tmin = min(ta, tb), tmax = max(ta, tb);
    float t0 = max(max(max(tmin.x, tmin.y), tmin.z), near);
    float t1 = min(min(min(tmax.x, tmax.y), tmax.z), far);
    float step_t = u_step / length(d);
    int n = int(max(floor((t1 - t0) / step_t), 0.0));

    vec3 to_voxel = (u_res - 1.0) / (u_bmax - u_bmin);      // world -> voxel units
    vec3 u0 = (o - u_bmin) * to_voxel;                       // ray origin, voxel units
    vec3 du = d * to_voxel;                                  // ray direction, voxel units
    vec3 du_safe = mix(du, vec3(1e-9), lessThan(abs(du), vec3(1e-9)));
    ivec3 top = ivec3(u_res) - 1;

    vec3 rgb = vec3(0.0);
    vec3 tint = vec3(0.0);
    float mask = 0.0;
    float T = 1.0;
    int k = 0;
    while (k < n) {
        float t = t0 + (float(k) + 0.5) * step_t;
        vec3 p = o + t * d;
        vec3 c = (p - u_bmin) / (u_bmax - u_bmin) * 2.0 - 1.0;  // normalised grid coords
        vec3 u = (c + 1.0) * 0.5 * (u_res - 1.0);                // voxel units
        ivec3 idx = clamp(ivec3(floor(u + 0.5)), ivec3(0), top);
        vec4 flags = texelFetch(u_flags, idx, 0);
        if (flags.r < 0.5) {
            ivec3 b = idx / u_block;
            int dist = int(texelFetch(u_blocks, b, 0).r * 255.0 + 0.5);
            k++;
            if (dist > 0) {
                // Leap to the first sample whose nearest voxel lies outside the empty blocks
                // within dist - 1 of block b.
                vec3 lo = vec3((b - (dist - 1)) * u_block) - 0.5, hi = vec3((b + dist) * u_block) - 0.5;
                vec3 t_out = (mix(lo, hi, greaterThan(du, vec3(0.0))) - u0) / du_safe;
                float t_leave = min(min(t_out.x, t_out.y), t_out.z);
                k = max(k, int(ceil((t_leave - t0) / step_t - 0.5)));
            }
            continue;
        }
        int group = min(int(flags.b * 255.0 + 0.5), n - k);
        k += group;
        int id = int(flags.g * 255.0 + 0.5);
        if ((u_view_mode == 1 && id != u_selected) || (u_view_mode == 2 && id == u_selected)) continue;
        vec3 tc = (u + du * (0.5 * float(group - 1) * step_t) + 0.5) / u_res;   // the group's centre
        vec4 v = texture(u_volume, tc);
        float raw = u_encoded_u8 ? mix(u_raw_lo, u_raw_hi, v.a) : v.a;
        float alpha = 1.0 - exp(-softplus(raw + u_shift) * u_scale * u_step * float(group));
        float w = T * alpha;
        if (w >= 1e-4) rgb += w * colour_of(v);
        if (id > 0 && u_objects[id].a > 0.5) {
            mask += w;
            tint += w * u_objects[id].rgb;
        }
        T *= 1.0 - alpha;
        if (T < u_tail) {
            // What is left of the ray is taken to look like this sample (it lies behind a surface).
            if (T >= 1e-3) rgb += T * colour_of(v);
            T = 0.0;
            break;
        }
    }
    vec3 background = u_background;
    if (u_unbounded) {
        float closest = dot(u_bg_centre - o, d) / max(dot(d, d), 1e-12);
        background = T > 0.0 ? outside_colour(o, d, max(t1 > t0 ? t1 : closest, near)) : vec3(0.0);
    } else if (u_background_from_exit) {
        float t_bg = t1 > t0 ? t1 : far;
        vec3 c = (o + t_bg * d - u_bmin) / (u_bmax - u_bmin) * 2.0 - 1.0;
        background = colour_at(((c + 1.0) * 0.5 * (u_res - 1.0) + 0.5) / u_res);
    }
    rgb = clamp(rgb + T * background, 0.0, 1.0);
    if (u_overlay && mask >= u_mask_threshold) rgb = mix(rgb, tint / mask, u_tint);
    frag = vec4(rgb, 1.0);
}
